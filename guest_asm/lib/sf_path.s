# sf_path.s - Shared Folders calls on paths: REMOVE, CLOSE_AND_REMOVE, RENAME, READLINK,
# SYMLINK, COPY_FILE.  Paths are SHFLSTRINGs (shfl_string_init) relative to the root,
# sent as in-pointers the way Linux fs/vboxsf does (LINADDR_KERNEL_IN -> page lists).
# Calling convention: see vmmdev.s.  Every routine returns eax = status.  Clobbers the
# caller-saved registers.  Not reentrant (one static request, see hgcm.s).
#
# sf_remove(client, root, path, flags)            flags: SHFL_REMOVE_FILE/DIR/SYMLINK
# sf_close_and_remove(client, root, path, flags, handle64)
#                                                 close handle64 (NIL = none), then remove
# sf_rename(client, root, src, dst, flags)        flags: SHFL_RENAME_FILE/DIR/REPLACE_IF_EXISTS
# sf_readlink(client, root, path, cb, buf)        buf: cb bytes, receives the NUL-terminated
#                                                 UTF-8 target (no length is returned)
# sf_symlink(client, root, link_path, target, info)
#                                                 target: SHFLSTRING of the raw target text;
#                                                 info: 92-byte SHFLFSOBJINFO out (the link)
# sf_copy_file(client, src_root, src_path, dst_root, dst_path, flags)   flags must be 0;
#                                                 the destination must not exist

.include "sfwrap.s"

sfw_arg RM_PATH, 2, 2
sfw_arg RM_FLAGS, 3, 3
sfw_arg RM_HANDLE, 4, 4
sf_remove:
    sfw_enter
    sfw_begin SHFL_FN_REMOVE, SHFL_CPARMS_REMOVE
    jmp sf_remove_parms
sf_close_and_remove:
    sfw_enter
    sfw_begin SHFL_FN_CLOSE_AND_REMOVE, SHFL_CPARMS_CLOSE_AND_REMOVE
    sfw_u64 3, RM_HANDLE
sf_remove_parms:
    sfw_u32 0, SFW_ROOT
    sfw_str 1, VBOX_HGCM_F_PARM_DIRECTION_TO_HOST, RM_PATH
    sfw_u32 2, RM_FLAGS
    sfw_call
    sfw_return

sfw_arg MV_SRC, 2, 2
sfw_arg MV_DST, 3, 3
sfw_arg MV_FLAGS, 4, 4
sf_rename:
    sfw_enter
    sfw_begin SHFL_FN_RENAME, SHFL_CPARMS_RENAME
    sfw_u32 0, SFW_ROOT
    sfw_str 1, VBOX_HGCM_F_PARM_DIRECTION_TO_HOST, MV_SRC
    sfw_str 2, VBOX_HGCM_F_PARM_DIRECTION_TO_HOST, MV_DST
    sfw_u32 3, MV_FLAGS
    sfw_call
    sfw_return

sfw_arg RL_PATH, 2, 2
sfw_arg RL_CB, 3, 3
sfw_arg RL_BUF, 4, 4
sf_readlink:
    sfw_enter
    sfw_begin SHFL_FN_READLINK, SHFL_CPARMS_READLINK
    sfw_u32 0, SFW_ROOT
    sfw_str 1, VBOX_HGCM_F_PARM_DIRECTION_TO_HOST, RL_PATH
    sfw_size_u32 RL_CB
    sfw_buf 2, VBOX_HGCM_F_PARM_DIRECTION_FROM_HOST, RL_BUF
    sfw_call
    sfw_return

sfw_arg SL_LINK, 2, 2
sfw_arg SL_TARGET, 3, 3
sfw_arg SL_INFO, 4, 4
sf_symlink:
    sfw_enter
    sfw_begin SHFL_FN_SYMLINK, SHFL_CPARMS_SYMLINK
    sfw_u32 0, SFW_ROOT
    sfw_str 1, VBOX_HGCM_F_PARM_DIRECTION_TO_HOST, SL_LINK
    sfw_str 2, VBOX_HGCM_F_PARM_DIRECTION_TO_HOST, SL_TARGET
    sfw_size_imm SHFLFSOBJINFO_SIZE
    sfw_buf 3, VBOX_HGCM_F_PARM_DIRECTION_FROM_HOST, SL_INFO
    sfw_call
    sfw_return

sfw_arg CF_SRC_PATH, 2, 2
sfw_arg CF_DST_ROOT, 3, 3
sfw_arg CF_DST_PATH, 4, 4
sfw_arg CF_FLAGS, 5, 5
sf_copy_file:
    sfw_enter
    sfw_begin SHFL_FN_COPY_FILE, SHFL_CPARMS_COPY_FILE
    sfw_u32 0, SFW_ROOT
    sfw_str 1, VBOX_HGCM_F_PARM_DIRECTION_TO_HOST, CF_SRC_PATH
    sfw_u32 2, CF_DST_ROOT
    sfw_str 3, VBOX_HGCM_F_PARM_DIRECTION_TO_HOST, CF_DST_PATH
    sfw_u32 4, CF_FLAGS
    sfw_call
    sfw_return
