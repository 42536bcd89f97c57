//! The baseline rules file: which paths to measure, what to leave out,
//! which attributes to record and which hash algorithm to use.
//!
//! One directive a line; `#` starts a comment and blank lines are ignored:
//!
//! ```text
//! hash sha256                   # sha256 (default), sha512, sha1 or blake3
//! attributes size mode uid gid mtime link
//! file /etc/passwd              # one file
//! dir /etc/ssh                  # a directory and its direct entries
//! tree /usr/bin                 # a directory and everything below it
//! exclude /usr/bin/*.pyc        # glob over full paths, `**` crosses `/`
//! ```
//!
//! A path is the rest of the line after the directive, so it may contain
//! spaces. A file whose lines are all comments has no rules, which turns
//! attestation off.

use std::fmt;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::digest::Algorithm;

/// Default location of the rules file on a device.
pub const DEFAULT_RULES_PATH: &str = "/etc/portcullis/baseline.rules";

/// File attributes that a measurement can record besides the digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes {
    pub size: bool,
    pub mode: bool,
    pub uid: bool,
    pub gid: bool,
    pub mtime: bool,
    pub link: bool,
}

impl Default for Attributes {
    /// Records everything except mtime, which changes on a plain `touch`
    /// and so makes every reinstall of an identical file look like a change.
    fn default() -> Self {
        Attributes {
            size: true,
            mode: true,
            uid: true,
            gid: true,
            mtime: false,
            link: true,
        }
    }
}

/// How far below a selected path the measurement goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// The path itself only.
    File,
    /// The directory and its direct entries.
    Directory,
    /// The directory and everything below it.
    Tree,
}

/// One selected path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub path: PathBuf,
    pub depth: Depth,
}

/// A parsed rules file.
#[derive(Debug, Clone)]
pub struct Rules {
    pub algorithm: Algorithm,
    pub attributes: Attributes,
    pub selections: Vec<Selection>,
    pub excludes: Vec<String>,
    exclude_set: GlobSet,
}

impl Rules {
    /// Returns true when the file selects nothing, so attestation is off.
    pub fn is_empty(&self) -> bool {
        self.selections.is_empty()
    }

    /// Returns true when `path` matches an `exclude` glob.
    pub fn is_excluded(&self, path: &Path) -> bool {
        self.exclude_set.is_match(path)
    }

    /// Reads and parses a rules file.
    pub fn load(path: &Path) -> Result<Rules, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|error| RulesError {
            source_name: path.display().to_string(),
            line: 0,
            message: format!("cannot read: {error}"),
        })?;
        Rules::parse(&text, &path.display().to_string())
    }

    /// Parses rules text; `source_name` names the input in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Rules, RulesError> {
        let mut algorithm = None;
        let mut attributes = None;
        let mut selections = Vec::new();
        let mut excludes = Vec::new();
        let mut exclude_builder = GlobSetBuilder::new();

        for (index, raw_line) in text.lines().enumerate() {
            let error = |message: String| RulesError {
                source_name: source_name.to_string(),
                line: index + 1,
                message,
            };
            let line = match raw_line.find('#') {
                Some(start) => &raw_line[..start],
                None => raw_line,
            }
            .trim();
            if line.is_empty() {
                continue;
            }

            let (directive, argument) = match line.split_once(char::is_whitespace) {
                Some((directive, rest)) => (directive, rest.trim()),
                None => (line, ""),
            };
            match directive {
                "hash" => {
                    if algorithm.is_some() {
                        return Err(error("hash is set twice; a device uses one algorithm".into()));
                    }
                    let parsed = argument.parse::<Algorithm>().map_err(error)?;
                    algorithm = Some(parsed);
                }
                "attributes" => {
                    if attributes.is_some() {
                        return Err(error("attributes is set twice".into()));
                    }
                    attributes = Some(parse_attributes(argument).map_err(error)?);
                }
                "file" | "dir" | "tree" => {
                    let path = parse_path(directive, argument).map_err(error)?;
                    let depth = match directive {
                        "file" => Depth::File,
                        "dir" => Depth::Directory,
                        _ => Depth::Tree,
                    };
                    selections.push(Selection { path, depth });
                }
                "exclude" => {
                    if argument.is_empty() {
                        return Err(error("exclude needs a glob pattern".into()));
                    }
                    let glob = GlobBuilder::new(argument)
                        .literal_separator(true)
                        .build()
                        .map_err(|e| error(format!("invalid glob {argument:?}: {}", e.kind())))?;
                    exclude_builder.add(glob);
                    excludes.push(argument.to_string());
                }
                other => {
                    return Err(error(format!(
                        "unknown directive {other:?}; expected hash, attributes, file, dir, tree or exclude"
                    )))
                }
            }
        }

        let exclude_set = exclude_builder.build().map_err(|e| RulesError {
            source_name: source_name.to_string(),
            line: 0,
            message: format!("cannot combine exclude globs: {e}"),
        })?;
        Ok(Rules {
            algorithm: algorithm.unwrap_or_default(),
            attributes: attributes.unwrap_or_default(),
            selections,
            excludes,
            exclude_set,
        })
    }
}

fn parse_attributes(argument: &str) -> Result<Attributes, String> {
    let mut attributes = Attributes {
        size: false,
        mode: false,
        uid: false,
        gid: false,
        mtime: false,
        link: false,
    };
    for name in argument.split_whitespace() {
        let flag = match name {
            "size" => &mut attributes.size,
            "mode" => &mut attributes.mode,
            "uid" => &mut attributes.uid,
            "gid" => &mut attributes.gid,
            "mtime" => &mut attributes.mtime,
            "link" => &mut attributes.link,
            other => {
                return Err(format!(
                    "unknown attribute {other:?}; expected size, mode, uid, gid, mtime or link"
                ))
            }
        };
        if *flag {
            return Err(format!("attribute {name:?} is listed twice"));
        }
        *flag = true;
    }
    Ok(attributes)
}

fn parse_path(directive: &str, argument: &str) -> Result<PathBuf, String> {
    if argument.is_empty() {
        return Err(format!("{directive} needs a path"));
    }
    if !argument.starts_with('/') {
        return Err(format!("{directive} path {argument:?} is not absolute"));
    }
    Ok(PathBuf::from(argument))
}

/// A rules file that cannot be read or parsed. Line 0 means the whole file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RulesError {
    pub source_name: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.source_name, self.message)
        } else {
            write!(f, "{}:{}: {}", self.source_name, self.line, self.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_error(text: &str) -> RulesError {
        Rules::parse(text, "test.rules").expect_err("rules should be rejected")
    }

    #[test]
    fn full_file_parses() {
        let text = "# device rules\n\
                    hash sha512\n\
                    attributes size mode mtime\n\
                    file /etc/passwd   # accounts\n\
                    dir /etc/ssh\n\
                    tree /usr/lib/my app\n\
                    exclude /usr/**/*.pyc\n";
        let rules = Rules::parse(text, "test.rules").unwrap();
        assert_eq!(rules.algorithm, Algorithm::Sha512);
        assert!(rules.attributes.size);
        assert!(rules.attributes.mode);
        assert!(rules.attributes.mtime);
        assert!(!rules.attributes.uid);
        assert!(!rules.attributes.gid);
        assert!(!rules.attributes.link);
        assert_eq!(rules.selections.len(), 3);
        assert_eq!(
            rules.selections[0],
            Selection {
                path: "/etc/passwd".into(),
                depth: Depth::File
            }
        );
        assert_eq!(rules.selections[1].depth, Depth::Directory);
        assert_eq!(rules.selections[2].path, PathBuf::from("/usr/lib/my app"));
        assert_eq!(rules.selections[2].depth, Depth::Tree);
        assert!(rules.is_excluded(Path::new("/usr/lib/python3/x/y.pyc")));
        assert!(!rules.is_excluded(Path::new("/usr/lib/python3/x/y.py")));
    }

    #[test]
    fn defaults_apply_when_unset() {
        let rules = Rules::parse("file /bin/sh\n", "test.rules").unwrap();
        assert_eq!(rules.algorithm, Algorithm::Sha256);
        assert_eq!(rules.attributes, Attributes::default());
    }

    #[test]
    fn all_comments_turn_attestation_off() {
        let rules = Rules::parse("# file /bin/sh\n\n   # tree /usr\n", "test.rules").unwrap();
        assert!(rules.is_empty());
        assert!(!Rules::parse("file /bin/sh", "t").unwrap().is_empty());
    }

    #[test]
    fn exclude_star_stays_in_one_directory() {
        let rules = Rules::parse("tree /usr\nexclude /usr/*.log\n", "t").unwrap();
        assert!(rules.is_excluded(Path::new("/usr/a.log")));
        assert!(!rules.is_excluded(Path::new("/usr/sub/a.log")));
    }

    #[test]
    fn every_error_names_its_line() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "file /a\nfrobnicate /x\n",
                2,
                "unknown directive \"frobnicate\"",
            ),
            ("hash md5\n", 1, "unknown hash algorithm \"md5\""),
            ("hash\n", 1, "hash needs an algorithm"),
            ("hash sha256\nhash sha1\n", 2, "hash is set twice"),
            (
                "attributes size colour\n",
                1,
                "unknown attribute \"colour\"",
            ),
            (
                "attributes size size\n",
                1,
                "attribute \"size\" is listed twice",
            ),
            (
                "attributes size\n\nattributes mode\n",
                3,
                "attributes is set twice",
            ),
            ("file\n", 1, "file needs a path"),
            ("dir\n", 1, "dir needs a path"),
            ("tree etc\n", 1, "tree path \"etc\" is not absolute"),
            ("exclude\n", 1, "exclude needs a glob pattern"),
            ("exclude /a/[b\n", 1, "invalid glob \"/a/[b\""),
        ];
        for (text, line, message) in cases {
            let error = parse_error(text);
            assert_eq!(error.line, *line, "line for {text:?}");
            assert!(
                error.message.contains(message),
                "message {:?} for {text:?}",
                error.message
            );
            assert!(error
                .to_string()
                .starts_with(&format!("test.rules:{line}: ")));
        }
    }

    #[test]
    fn unreadable_file_is_named() {
        let error = Rules::load(Path::new("/nonexistent/baseline.rules")).unwrap_err();
        assert_eq!(error.line, 0);
        assert!(error
            .to_string()
            .starts_with("/nonexistent/baseline.rules: cannot read"));
    }
}
