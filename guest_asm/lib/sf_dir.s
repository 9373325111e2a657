# sf_dir.s - Shared Folders directory listing (LIST), as Linux fs/vboxsf calls it.
# Calling convention: see vmmdev.s.  Not reentrant (one static request, see hgcm.s).
#
# sf_list(client, root, handle64, flags, path, pcb, buf, pcount) -> eax = status,
#                                                                  edx = resume point
#   handle64: a directory handle (CREATE with SHFL_CF_DIRECTORY); flags: SHFL_LIST_*;
#   path: SHFLSTRING filter or 0 for none (sent as a zero-size in-pointer, like Linux);
#   *pcb in: bytes usable at buf (>= 128), out: bytes of SHFLDIRINFO records returned;
#   *pcount out: number of records.  The resume point is sent as 0 (the host ignores it);
#   edx = 1 when more entries may follow, 0 when the listing is finished.  Records are
#   packed: each is SHFLDIRINFOHEADER_SIZE (126) + name.u16Size bytes.  The end of the
#   directory is VERR_NO_MORE_FILES; VINF_BUFFER_OVERFLOW (success) means no entry fit.

.include "sfwrap.s"

sfw_arg LIST_FLAGS, 3, 4
sfw_arg LIST_PATH, 4, 5
sfw_arg LIST_PCB, 5, 6
sfw_arg LIST_BUF, 6, 7
sfw_arg LIST_PCOUNT, 7, 8
sf_list:
    sfw_enter
    sfw_begin SHFL_FN_LIST, SHFL_CPARMS_LIST
    sfw_root_handle
    sfw_u32 2, LIST_FLAGS
    sfw_u32p 3, LIST_PCB
    sfw_str 4, VBOX_HGCM_F_PARM_DIRECTION_TO_HOST, LIST_PATH
    sfw_size_deref LIST_PCB
    sfw_buf 5, VBOX_HGCM_F_PARM_DIRECTION_FROM_HOST, LIST_BUF
    sfw_u32i 6, 0
    sfw_u32i 7, 0
    sfw_call
    sfw_out32 3, LIST_PCB
    sfw_out32 7, LIST_PCOUNT
    sfw_result32 6
    sfw_return
