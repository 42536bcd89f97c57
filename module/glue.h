/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Interface between glue.c and the Rust side of portcullis.ko. The Rust
 * declarations of these functions are in ffi.rs; keep both in step.
 */
#ifndef PORTCULLIS_GLUE_H
#define PORTCULLIS_GLUE_H

#include <linux/types.h>

struct file;
struct genl_info;
struct sk_buff;

/* Identity of one version of a file's content; `FileIdentity` in ffi.rs. */
struct pc_file_identity {
	u64 ino;
	u64 change;
	s64 ctime_ns;
	s64 mtime_ns;
	s64 size;
	u32 dev;
	u32 generation;
	u8 has_change;
};

/* The task a hook runs for; `TaskInfo` in ffi.rs. */
struct pc_task_info {
	u32 pid;
	u32 tgid;
	u32 uid;
	char comm[16];
};

/* Provided by glue.c. */
int pc_glue_init(void);
void pc_glue_exit(void);
int pc_hooks_install(void);
void pc_hooks_remove(void);
void pc_file_identity(struct file *file, struct pc_file_identity *id);
int pc_file_digest(struct file *file, u8 *out);
ssize_t pc_file_path(struct file *file, char *buf, size_t len);
void pc_current_task(struct pc_task_info *info);
void pc_module_pin(void);
int pc_genl_attr(const struct genl_info *info, u16 type, const void **data,
		 u32 *len);
bool pc_genl_sender_is_admin(const struct sk_buff *skb);
u32 pc_genl_sender_portid(const struct genl_info *info);
struct sk_buff *pc_msg_new(u8 cmd, struct genl_info *info, size_t payload,
			   void **hdr);
int pc_msg_put(struct sk_buff *msg, u16 type, const void *data, u32 len);
int pc_msg_put_u64(struct sk_buff *msg, u16 type, u64 value);
void pc_msg_free(struct sk_buff *msg);
int pc_msg_send(struct sk_buff *msg, void *hdr, struct genl_info *info);
bool pc_events_have_listeners(void);
void pc_events_kick(void);

/* Provided by the Rust side. */
int portcullis_check(u8 hook, struct file *file);
int portcullis_genl_cmd(u8 cmd, struct sk_buff *skb, struct genl_info *info);
void portcullis_drain_events(void);

#endif
