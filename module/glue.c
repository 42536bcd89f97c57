// SPDX-License-Identifier: GPL-2.0
/*
 * The C side of portcullis.ko: only what the 6.12 Rust `kernel` crate cannot
 * express. That is attaching to the security_* functions through ftrace,
 * reading and hashing a file with the crypto API, d_path, and the generic
 * netlink family. Every decision is made in Rust (see eval.rs); the
 * functions here are plumbing with no policy of their own.
 */

#include <linux/atomic.h>
#include <linux/binfmts.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/ftrace.h>
#include <linux/iversion.h>
#include <linux/kprobes.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/security.h>
#include <linux/slab.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <crypto/hash.h>
#include <net/genetlink.h>

#include "glue.h"
#include "portcullis_uapi.h"

MODULE_VERSION(PC_MODULE_VERSION);

/* ---- attaching to the security_* functions ---- */

struct pc_hook {
	const char *name;
	void *wrapper;
	/* Address of the original function, called when our check allows. */
	unsigned long original;
	struct ftrace_ops ops;
};

/*
 * Counts the wrappers running now, so that unload can wait for them. A wrapper
 * may sleep for a long time while it hashes a large file.
 */
static atomic_t pc_inflight = ATOMIC_INIT(0);
static DECLARE_WAIT_QUEUE_HEAD(pc_inflight_wait);

static void pc_enter(void)
{
	atomic_inc(&pc_inflight);
}

static void pc_leave(void)
{
	if (atomic_dec_and_test(&pc_inflight))
		wake_up_all(&pc_inflight_wait);
}

static struct pc_hook pc_hooks[PC_HOOK_COUNT];

typedef int (*pc_bprm_check_fn)(struct linux_binprm *bprm);
typedef int (*pc_mmap_file_fn)(struct file *file, unsigned long prot,
			       unsigned long flags);
typedef int (*pc_file_mprotect_fn)(struct vm_area_struct *vma,
				   unsigned long reqprot, unsigned long prot);

/*
 * Each wrapper runs in place of its security_* function, in the caller's
 * process context, and may sleep. It calls the original only when our check
 * allows, then does more work (pc_leave), because a tail call would leave
 * the original's caller outside this module and ftrace would send it back
 * into the wrapper forever.
 */

/**
 * pc_bprm_check() - Check the file about to be executed.
 * @bprm: the exec in progress; called once per binfmt stage, so the script
 *        and then its interpreter of a `#!` script are each checked.
 *
 * Return: 0 to allow, -EACCES when Portcullis denies, or what the original
 * security_bprm_check() returns.
 */
static int pc_bprm_check(struct linux_binprm *bprm)
{
	int ret;

	pc_enter();
	ret = portcullis_check(PC_HOOK_BPRM_CHECK, bprm->file);
	if (!ret)
		ret = ((pc_bprm_check_fn)pc_hooks[PC_HOOK_BPRM_CHECK].original)(bprm);
	pc_leave();
	return ret;
}

/**
 * pc_mmap_file() - Check a file mapped with PROT_EXEC.
 * @file: the file, or NULL for an anonymous mapping, which is not checked.
 * @prot: protection the kernel applies, after READ_IMPLIES_EXEC.
 * @flags: mmap flags.
 *
 * Return: 0 to allow, -EACCES when Portcullis denies, or what the original
 * security_mmap_file() returns.
 */
static int pc_mmap_file(struct file *file, unsigned long prot,
			unsigned long flags)
{
	int ret = 0;

	pc_enter();
	if (file && (prot & PROT_EXEC))
		ret = portcullis_check(PC_HOOK_MMAP_FILE, file);
	if (!ret)
		ret = ((pc_mmap_file_fn)pc_hooks[PC_HOOK_MMAP_FILE].original)(
			file, prot, flags);
	pc_leave();
	return ret;
}

/**
 * pc_file_mprotect() - Check a file mapping that mprotect makes executable.
 * @vma: the mapping; anonymous mappings and mappings that are already
 *       executable are not checked.
 * @reqprot: protection requested by user space.
 * @prot: protection the kernel applies.
 *
 * Called with the mmap lock held for writing, so hashing here can take the
 * file's locks under it. Most files reach this hook already hashed by an
 * earlier mmap.
 *
 * Return: 0 to allow, -EACCES when Portcullis denies, or what the original
 * security_file_mprotect() returns.
 */
static int pc_file_mprotect(struct vm_area_struct *vma, unsigned long reqprot,
			    unsigned long prot)
{
	int ret = 0;

	pc_enter();
	if (vma->vm_file && (prot & PROT_EXEC) && !(vma->vm_flags & VM_EXEC))
		ret = portcullis_check(PC_HOOK_FILE_MPROTECT, vma->vm_file);
	if (!ret)
		ret = ((pc_file_mprotect_fn)pc_hooks[PC_HOOK_FILE_MPROTECT].original)(
			vma, reqprot, prot);
	pc_leave();
	return ret;
}

/*
 * Runs at the traced function's entry. Calls that come from our own wrapper
 * go on to the original function; all others are sent to the wrapper.
 */
static void notrace pc_ftrace_thunk(unsigned long ip, unsigned long parent_ip,
				    struct ftrace_ops *ops,
				    struct ftrace_regs *fregs)
{
	struct pc_hook *hook = container_of(ops, struct pc_hook, ops);

	if (!within_module(parent_ip, THIS_MODULE))
		ftrace_regs_set_instruction_pointer(fregs,
						    (unsigned long)hook->wrapper);
}

/*
 * Finds a symbol's address. kallsyms_lookup_name() is not exported, but
 * registering a kprobe resolves the name. With IBT the kprobe sits after the
 * function's ENDBR instruction, and an indirect call must land on the ENDBR.
 */
static unsigned long pc_lookup_symbol(const char *name)
{
	struct kprobe kp = { .symbol_name = name };
	unsigned long addr;

	if (register_kprobe(&kp) < 0)
		return 0;
	addr = (unsigned long)kp.addr;
	unregister_kprobe(&kp);
#ifdef CONFIG_X86_KERNEL_IBT
	if (is_endbr(*(u32 *)(addr - ENDBR_INSN_SIZE)))
		addr -= ENDBR_INSN_SIZE;
#endif
	return addr;
}

static int pc_hook_install(struct pc_hook *hook)
{
	int err;

	hook->original = pc_lookup_symbol(hook->name);
	if (!hook->original) {
		pr_err("portcullis: symbol %s not found; cannot attach\n",
		       hook->name);
		return -ENOENT;
	}

	hook->ops.func = pc_ftrace_thunk;
	hook->ops.flags = FTRACE_OPS_FL_SAVE_REGS | FTRACE_OPS_FL_RECURSION |
			  FTRACE_OPS_FL_IPMODIFY;
	err = ftrace_set_filter(&hook->ops, (unsigned char *)hook->name,
				strlen(hook->name), 0);
	if (err) {
		pr_err("portcullis: ftrace filter on %s failed: %d\n",
		       hook->name, err);
		return err;
	}
	err = register_ftrace_function(&hook->ops);
	if (err) {
		pr_err("portcullis: attaching to %s failed: %d\n", hook->name,
		       err);
		ftrace_free_filter(&hook->ops);
		return err;
	}
	return 0;
}

static void pc_hook_remove(struct pc_hook *hook)
{
	if (!hook->ops.func)
		return;
	unregister_ftrace_function(&hook->ops);
	ftrace_free_filter(&hook->ops);
	hook->ops.func = NULL;
}

void pc_hooks_remove(void)
{
	int i;

	for (i = 0; i < PC_HOOK_COUNT; i++)
		pc_hook_remove(&pc_hooks[i]);

	/*
	 * No new caller reaches a wrapper now. Wait for the callers inside one,
	 * then for the last of them to leave this module's text after its
	 * pc_leave(). A task preempted there has not passed a Tasks RCU
	 * quiescent state, and without preemption it cannot be off CPU there.
	 */
	wait_event(pc_inflight_wait, atomic_read(&pc_inflight) == 0);
	if (IS_ENABLED(CONFIG_TASKS_RCU))
		synchronize_rcu_tasks();
	synchronize_rcu();
}

int pc_hooks_install(void)
{
	int i, err;

	pc_hooks[PC_HOOK_BPRM_CHECK].name = "security_bprm_check";
	pc_hooks[PC_HOOK_BPRM_CHECK].wrapper = pc_bprm_check;
	pc_hooks[PC_HOOK_MMAP_FILE].name = "security_mmap_file";
	pc_hooks[PC_HOOK_MMAP_FILE].wrapper = pc_mmap_file;
	pc_hooks[PC_HOOK_FILE_MPROTECT].name = "security_file_mprotect";
	pc_hooks[PC_HOOK_FILE_MPROTECT].wrapper = pc_file_mprotect;

	for (i = 0; i < PC_HOOK_COUNT; i++) {
		err = pc_hook_install(&pc_hooks[i]);
		if (err) {
			pc_hooks_remove();
			return err;
		}
	}
	return 0;
}

/* ---- files: identity, digest, path ---- */

void pc_file_identity(struct file *file, struct pc_file_identity *id)
{
	struct inode *inode = file_inode(file);

	id->dev = new_encode_dev(inode->i_sb->s_dev);
	id->ino = inode->i_ino;
	id->generation = inode->i_generation;
	id->has_change = IS_I_VERSION(inode);
	/* Querying marks the version seen, so the next write bumps it. */
	id->change = id->has_change ? inode_query_iversion(inode) : 0;
	id->ctime_ns = timespec64_to_ns(&(struct timespec64){
		.tv_sec = inode_get_ctime_sec(inode),
		.tv_nsec = inode_get_ctime_nsec(inode) });
	id->mtime_ns = timespec64_to_ns(&(struct timespec64){
		.tv_sec = inode_get_mtime_sec(inode),
		.tv_nsec = inode_get_mtime_nsec(inode) });
	id->size = i_size_read(inode);
}

static struct crypto_shash *pc_sha256;

#define PC_READ_CHUNK (64 * 1024)

/**
 * pc_file_digest() - Compute the SHA-256 of a file's whole content.
 * @file: an open file; it is read from offset 0 without moving its f_pos.
 * @out: receives PC_DIGEST_LEN bytes.
 *
 * Sleeps. Stops early when the caller gets a fatal signal.
 *
 * Return: 0, -ENOMEM, -EINTR, or the error of the read or the hash.
 */
int pc_file_digest(struct file *file, u8 *out)
{
	SHASH_DESC_ON_STACK(desc, pc_sha256);
	loff_t pos = 0;
	ssize_t n;
	void *buf;
	int err;

	buf = kvmalloc(PC_READ_CHUNK, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;

	desc->tfm = pc_sha256;
	err = crypto_shash_init(desc);
	while (!err) {
		n = kernel_read(file, buf, PC_READ_CHUNK, &pos);
		if (n <= 0) {
			err = n;
			break;
		}
		err = crypto_shash_update(desc, buf, n);
		if (!err && fatal_signal_pending(current))
			err = -EINTR;
		cond_resched();
	}
	if (!err)
		err = crypto_shash_final(desc, out);

	shash_desc_zero(desc);
	kvfree(buf);
	return err;
}

/**
 * pc_file_path() - Write the path of @file at the start of @buf.
 * @file: an open file.
 * @buf: output buffer; receives a NUL-terminated path.
 * @len: size of @buf.
 *
 * Return: length of the path without its NUL, or -ENAMETOOLONG.
 */
ssize_t pc_file_path(struct file *file, char *buf, size_t len)
{
	char *path = d_path(&file->f_path, buf, len);
	size_t n;

	if (IS_ERR(path))
		return PTR_ERR(path);
	n = strlen(path);
	memmove(buf, path, n + 1);
	return n;
}

void pc_current_task(struct pc_task_info *info)
{
	info->pid = task_pid_nr(current);
	info->tgid = task_tgid_nr(current);
	info->uid = from_kuid_munged(&init_user_ns, current_uid());
	BUILD_BUG_ON(sizeof(info->comm) != TASK_COMM_LEN);
	get_task_comm(info->comm, current);
}

/* Keeps the module loaded until reboot; used when the policy is locked. */
void pc_module_pin(void)
{
	__module_get(THIS_MODULE);
}

/* ---- generic netlink ---- */

static const struct nla_policy pc_entry_policy[PC_ENTRY_ATTR_MAX + 1] = {
	[PC_ENTRY_ATTR_DIGEST] = NLA_POLICY_EXACT_LEN(PC_DIGEST_LEN),
	[PC_ENTRY_ATTR_PATH] = { .type = NLA_NUL_STRING, .len = PC_PATH_MAX - 1 },
	[PC_ENTRY_ATTR_FLAGS] = { .type = NLA_U32 },
};

static const struct nla_policy pc_policy[PC_ATTR_MAX + 1] = {
	/* Ranges are checked in netlink.rs, which returns EINVAL, not ERANGE. */
	[PC_ATTR_MODE] = { .type = NLA_U8 },
	[PC_ATTR_ENTRIES] = NLA_POLICY_NESTED_ARRAY(pc_entry_policy),
	[PC_ATTR_AUDIT_ALLOWED] = { .type = NLA_U8 },
	[PC_ATTR_ENTRY_COUNT] = { .type = NLA_U32 },
};

static int pc_genl_doit(struct sk_buff *skb, struct genl_info *info)
{
	return portcullis_genl_cmd(info->genlhdr->cmd, skb, info);
}

#define PC_OP(c) { .cmd = (c), .doit = pc_genl_doit }

static const struct genl_small_ops pc_genl_ops[] = {
	PC_OP(PC_CMD_GET_STATUS),
	PC_OP(PC_CMD_SET_MODE),
	PC_OP(PC_CMD_POLICY_BEGIN),
	PC_OP(PC_CMD_POLICY_CHUNK),
	PC_OP(PC_CMD_POLICY_COMMIT),
	PC_OP(PC_CMD_POLICY_ABORT),
	PC_OP(PC_CMD_ADD_ENTRIES),
	PC_OP(PC_CMD_LOCK),
	PC_OP(PC_CMD_SET_AUDIT),
};

static const struct genl_multicast_group pc_mcgrps[] = {
	{ .name = PC_MCGRP_EVENTS },
};

static struct genl_family pc_family __ro_after_init = {
	.name = PC_FAMILY_NAME,
	.version = PC_PROTOCOL_VERSION,
	.maxattr = PC_ATTR_MAX,
	.policy = pc_policy,
	.module = THIS_MODULE,
	.small_ops = pc_genl_ops,
	.n_small_ops = ARRAY_SIZE(pc_genl_ops),
	/* Strict header and attribute checks for every command. */
	.resv_start_op = PC_CMD_GET_STATUS,
	.mcgrps = pc_mcgrps,
	.n_mcgrps = ARRAY_SIZE(pc_mcgrps),
};

/* Returns 1 and the payload of attribute @type of a request, or 0. */
int pc_genl_attr(const struct genl_info *info, u16 type, const void **data,
		 u32 *len)
{
	const struct nlattr *nla;

	if (type > PC_ATTR_MAX || !info->attrs[type])
		return 0;
	nla = info->attrs[type];
	*data = nla_data(nla);
	*len = nla_len(nla);
	return 1;
}

/* Checks the capability of the socket that sent the request. */
bool pc_genl_sender_is_admin(const struct sk_buff *skb)
{
	return netlink_capable(skb, CAP_SYS_ADMIN);
}

u32 pc_genl_sender_portid(const struct genl_info *info)
{
	return info->snd_portid;
}

/**
 * pc_msg_new() - Start a message of @cmd.
 * @cmd: generic netlink command of the message.
 * @info: the request to reply to, or NULL for a multicast event.
 * @payload: room to reserve for attributes, in bytes.
 * @hdr: receives the header for pc_msg_send().
 *
 * Sleeps to allocate.
 *
 * Return: the message, or NULL when out of memory.
 */
struct sk_buff *pc_msg_new(u8 cmd, struct genl_info *info,
			   size_t payload, void **hdr)
{
	struct sk_buff *msg = genlmsg_new(payload, GFP_KERNEL);

	if (!msg)
		return NULL;
	if (info)
		*hdr = genlmsg_put_reply(msg, info, &pc_family, 0, cmd);
	else
		*hdr = genlmsg_put(msg, 0, 0, &pc_family, 0, cmd);
	if (!*hdr) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

int pc_msg_put(struct sk_buff *msg, u16 type, const void *data, u32 len)
{
	return nla_put(msg, type, len, data);
}

int pc_msg_put_u64(struct sk_buff *msg, u16 type, u64 value)
{
	return nla_put_u64_64bit(msg, type, value, PC_ATTR_PAD);
}

void pc_msg_free(struct sk_buff *msg)
{
	nlmsg_free(msg);
}

/**
 * pc_msg_send() - Finish @msg and send it; consumes @msg.
 * @msg: message from pc_msg_new().
 * @hdr: its header.
 * @info: the request to reply to, or NULL to multicast to the event group.
 *
 * Return: 0, or the error of the send (-ESRCH: no socket listens).
 */
int pc_msg_send(struct sk_buff *msg, void *hdr, struct genl_info *info)
{
	genlmsg_end(msg, hdr);
	if (info)
		return genlmsg_reply(msg, info);
	return genlmsg_multicast(&pc_family, msg, 0, 0, GFP_KERNEL);
}

bool pc_events_have_listeners(void)
{
	return genl_has_listeners(&pc_family, &init_net, 0);
}

static void pc_event_work_fn(struct work_struct *work)
{
	portcullis_drain_events();
}

static DECLARE_WORK(pc_event_work, pc_event_work_fn);

/* Asks the event worker to send what is queued; never sleeps. */
void pc_events_kick(void)
{
	schedule_work(&pc_event_work);
}

/* ---- set-up and tear-down, called from the Rust module ---- */

/*
 * Prepares the digest and netlink plumbing. The hooks are attached last, by
 * pc_hooks_install(), once the Rust state they call into exists.
 */
int pc_glue_init(void)
{
	int err;

	pc_sha256 = crypto_alloc_shash("sha256", 0, 0);
	if (IS_ERR(pc_sha256)) {
		err = PTR_ERR(pc_sha256);
		pr_err("portcullis: sha256 not available: %d\n", err);
		return err;
	}

	err = genl_register_family(&pc_family);
	if (err) {
		pr_err("portcullis: registering netlink family failed: %d\n",
		       err);
		crypto_free_shash(pc_sha256);
		return err;
	}
	return 0;
}

/* Undoes pc_glue_init(); the hooks must already be removed. */
void pc_glue_exit(void)
{
	cancel_work_sync(&pc_event_work);
	genl_unregister_family(&pc_family);
	crypto_free_shash(pc_sha256);
}
