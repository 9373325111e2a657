# sf_client.s - Shared Folders calls about the client and its mappings, beyond SET_UTF8,
# MAP_FOLDER, UNMAP_FOLDER, QUERY_MAPPINGS and QUERY_MAP_NAME (sf.s): MAP_FOLDER_OLD,
# SET_SYMLINKS, QUERY_MAP_INFO, WAIT_FOR_MAPPINGS_CHANGES, CANCEL_MAPPINGS_CHANGES_WAITS,
# QUERY_FEATURES, SET_ERROR_STYLE.
# Calling convention: see vmmdev.s.  Every routine returns eax = status.  Clobbers the
# caller-saved registers.  Not reentrant (one static request, see hgcm.s).
#
# sf_map_folder_old(client, name) -> eax status, edx root   (delimiter '/'; the host maps
#                                                            it case-insensitively)
# sf_set_symlinks(client)                         report symlinks as symlinks (lstat)
# sf_query_map_info(client, root, name, mount_point, pflags64) -> eax status, edx version
#   name, mount_point: output SHFLSTRING buffers (shfl_string_init_buffer);
#   *pflags64 (u64) in: SHFL_MIQF_*, out: SHFL_MIF_*; edx = the root id version.
# sf_wait_for_mappings_changes(client, pversion)  *pversion (u32) in: last known mappings
#   version, out: current one.  May complete asynchronously: the call spins until it does.
# sf_cancel_mappings_changes_waits(client)
# sf_query_features(client, pfeatures64) -> eax status, edx = last function number
#   *pfeatures64 (u64) out: SHFL_FEATURE_* bits.
# sf_set_error_style(client, style)               style: SHFL_ERROR_STYLE_*

.include "sfwrap.s"

sfw_arg MAPOLD_NAME, 1, 1
sf_map_folder_old:
    sfw_enter
    sfw_begin SHFL_FN_MAP_FOLDER_OLD, SHFL_CPARMS_MAP_FOLDER_OLD
    sfw_str 0, VBOX_HGCM_F_PARM_DIRECTION_BOTH, MAPOLD_NAME
    sfw_u32i 1, 0
    sfw_u32i 2, '/'
    sfw_call
    sfw_result32 1
    sfw_return

# A call without parameters (args: client).
.macro sf_no_parm_call fn, cparms
    sfw_enter
    sfw_begin \fn, \cparms
    sfw_call
    sfw_return
.endm
sf_set_symlinks:
    sf_no_parm_call SHFL_FN_SET_SYMLINKS, SHFL_CPARMS_SET_SYMLINKS
sf_cancel_mappings_changes_waits:
    sf_no_parm_call SHFL_FN_CANCEL_MAPPINGS_CHANGES_WAITS, SHFL_CPARMS_CANCEL_MAPPINGS_CHANGES_WAITS

sfw_arg MAPINFO_NAME, 2, 2
sfw_arg MAPINFO_MOUNT, 3, 3
sfw_arg MAPINFO_PFLAGS, 4, 4
sf_query_map_info:
    sfw_enter
    sfw_begin SHFL_FN_QUERY_MAP_INFO, SHFL_CPARMS_QUERY_MAP_INFO
    sfw_u32 0, SFW_ROOT
    sfw_str 1, VBOX_HGCM_F_PARM_DIRECTION_BOTH, MAPINFO_NAME
    sfw_str 2, VBOX_HGCM_F_PARM_DIRECTION_BOTH, MAPINFO_MOUNT
    sfw_u64p 3, MAPINFO_PFLAGS
    sfw_u32i 4, 0
    sfw_call
    sfw_out64 3, MAPINFO_PFLAGS
    sfw_result32 4
    sfw_return

sfw_arg WAIT_PVERSION, 1, 1
sf_wait_for_mappings_changes:
    sfw_enter
    sfw_begin SHFL_FN_WAIT_FOR_MAPPINGS_CHANGES, SHFL_CPARMS_WAIT_FOR_MAPPINGS_CHANGES
    sfw_u32p 0, WAIT_PVERSION
    sfw_call
    sfw_out32 0, WAIT_PVERSION
    sfw_return

sfw_arg FEATURES_PTR, 1, 1
sf_query_features:
    sfw_enter
    sfw_begin SHFL_FN_QUERY_FEATURES, SHFL_CPARMS_QUERY_FEATURES
    sfw_u64_zero 0
    sfw_u32i 1, 0
    sfw_call
    sfw_out64 0, FEATURES_PTR
    sfw_result32 1
    sfw_return

sfw_arg ERRSTYLE_STYLE, 1, 1
sf_set_error_style:
    sfw_enter
    sfw_begin SHFL_FN_SET_ERROR_STYLE, SHFL_CPARMS_SET_ERROR_STYLE
    sfw_u32 0, ERRSTYLE_STYLE
    sfw_u32i 1, 0
    sfw_call
    sfw_return
