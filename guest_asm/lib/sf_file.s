# sf_file.s - Shared Folders calls on an open handle, beyond READ/WRITE/CLOSE/FLUSH (sf.s):
# LOCK, INFORMATION (get/set file info, set size, volume info), SET_FILE_SIZE,
# COPY_FILE_PART.  Parameter types as Linux fs/vboxsf sends them (root 32-bit, handle,
# offsets and sizes 64-bit, buffers as in/out pointers through hgcm_parm_buf).
# Calling convention: see vmmdev.s (64-bit arguments: one register / two stack slots).
# Every routine returns eax = status (HGCM result, or a negative header.rc).  Clobbers the
# caller-saved registers.  Not reentrant (one static request, see hgcm.s).
#
# sf_lock(client, root, handle64, offset64, length64, flags)     flags: SHFL_LOCK_*
# sf_information(client, root, handle64, flags, pcb, info)
#   Generic INFORMATION: flags SHFL_INFO_*; *pcb in: bytes at info, out: bytes used.
# sf_fsinfo_get(client, root, handle64, info)        GET|FILE, info: 92-byte SHFLFSOBJINFO
# sf_fsinfo_set(client, root, handle64, info)        SET|FILE (times/mode; 0 = unchanged);
#                                                    the host writes the new info back
# sf_fsinfo_set_size(client, root, handle64, info)   SET|SIZE to info.cbObject (what Linux
#                                                    setattr does for truncate)
# sf_volume_info(client, root, volinfo)              GET|VOLUME with handle 0 (like Linux
#                                                    statfs), volinfo: 40-byte SHFLVOLINFO
# sf_set_file_size(client, root, handle64, size64)   SET_FILE_SIZE
# sf_copy_file_part(client, src_root, src_handle64, src_offset64, dst_root, dst_handle64,
#                   dst_offset64, pcb64, flags)
#   *pcb64 (a u64) in: bytes to copy, out: bytes copied; flags must be 0.

.include "sfwrap.s"

sfw_arg LOCK_OFFSET, 3, 4
sfw_arg LOCK_LENGTH, 4, 6
sfw_arg LOCK_FLAGS, 5, 8
sf_lock:
    sfw_enter
    sfw_begin SHFL_FN_LOCK, SHFL_CPARMS_LOCK
    sfw_root_handle
    sfw_u64 2, LOCK_OFFSET
    sfw_u64 3, LOCK_LENGTH
    sfw_u32 4, LOCK_FLAGS
    sfw_call
    sfw_return

sfw_arg INFO_FLAGS, 3, 4
sfw_arg INFO_PCB, 4, 5
sfw_arg INFO_BUF, 5, 6
sf_information:
    sfw_enter
    sfw_begin SHFL_FN_INFORMATION, SHFL_CPARMS_INFORMATION
    sfw_root_handle
    sfw_u32 2, INFO_FLAGS
    sfw_u32p 3, INFO_PCB
    sfw_size_deref INFO_PCB
    sfw_buf 4, VBOX_HGCM_F_PARM_DIRECTION_BOTH, INFO_BUF
    sfw_call
    sfw_out32 3, INFO_PCB
    sfw_return

# INFORMATION with fixed flags on a 92-byte SHFLFSOBJINFO (args: client, root, handle, info).
sfw_arg FSINFO_BUF, 3, 4
.macro sf_fsinfo_call flags
    sfw_enter
    sfw_begin SHFL_FN_INFORMATION, SHFL_CPARMS_INFORMATION
    sfw_root_handle
    sfw_u32i 2, \flags
    sfw_u32i 3, SHFLFSOBJINFO_SIZE
    sfw_size_imm SHFLFSOBJINFO_SIZE
    sfw_buf 4, VBOX_HGCM_F_PARM_DIRECTION_BOTH, FSINFO_BUF
    sfw_call
    sfw_return
.endm
sf_fsinfo_get:
    sf_fsinfo_call SHFL_INFO_GET|SHFL_INFO_FILE
sf_fsinfo_set:
    sf_fsinfo_call SHFL_INFO_SET|SHFL_INFO_FILE
sf_fsinfo_set_size:
    sf_fsinfo_call SHFL_INFO_SET|SHFL_INFO_SIZE

sfw_arg VOLINFO_BUF, 2, 2
sf_volume_info:
    sfw_enter
    sfw_begin SHFL_FN_INFORMATION, SHFL_CPARMS_INFORMATION
    sfw_u32 0, SFW_ROOT
    sfw_u64_zero 1
    sfw_u32i 2, SHFL_INFO_GET|SHFL_INFO_VOLUME
    sfw_u32i 3, SHFLVOLINFO_SIZE
    sfw_size_imm SHFLVOLINFO_SIZE
    sfw_buf 4, VBOX_HGCM_F_PARM_DIRECTION_BOTH, VOLINFO_BUF
    sfw_call
    sfw_return

sfw_arg SETSIZE_SIZE, 3, 4
sf_set_file_size:
    sfw_enter
    sfw_begin SHFL_FN_SET_FILE_SIZE, SHFL_CPARMS_SET_FILE_SIZE
    sfw_root_handle
    sfw_u64 2, SETSIZE_SIZE
    sfw_call
    sfw_return

sfw_arg CFP_SRC_OFFSET, 3, 4
sfw_arg CFP_DST_ROOT, 4, 6
sfw_arg CFP_DST_HANDLE, 5, 7
sfw_arg CFP_DST_OFFSET, 6, 9
sfw_arg CFP_PCB, 7, 11
sfw_arg CFP_FLAGS, 8, 12
sf_copy_file_part:
    sfw_enter
    sfw_begin SHFL_FN_COPY_FILE_PART, SHFL_CPARMS_COPY_FILE_PART
    sfw_root_handle
    sfw_u64 2, CFP_SRC_OFFSET
    sfw_u32 3, CFP_DST_ROOT
    sfw_u64 4, CFP_DST_HANDLE
    sfw_u64 5, CFP_DST_OFFSET
    sfw_u64p 6, CFP_PCB
    sfw_u32 7, CFP_FLAGS
    sfw_call
    sfw_out64 6, CFP_PCB
    sfw_return
