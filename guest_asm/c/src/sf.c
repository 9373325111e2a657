/* sf.c - Shared Folders client calls (hgcmlab/sf.h). */
#include <hgcmlab/hgcm.h>
#include <hgcmlab/libc.h>
#include <hgcmlab/sf.h>

/* A SHFLSTRING with room for a path and its NUL. */
struct shfl_path {
    ShflStringHeader header;
    char bytes[SF_MAX_PATH + 1];
} __attribute__((packed));

static enum sf_buffer_kind buffer_kind = SF_BUFFERS_PAGELIST;

void sf_set_buffer_kind(enum sf_buffer_kind kind) { buffer_kind = kind; }

/* A buffer parameter in the chosen kind; `direction` is a VBOX_HGCM_F_PARM_DIRECTION_*. */
static int buffer(hg_call *call, uint32_t index, uint32_t direction, const void *data, uint32_t size) {
    if (buffer_kind == SF_BUFFERS_PAGELIST)
        return hg_call_pagelist(call, index, direction, data, size);
    uint32_t type = direction == VBOX_HGCM_F_PARM_DIRECTION_TO_HOST     ? VMMDevHGCMParmType_LinAddr_In
                    : direction == VBOX_HGCM_F_PARM_DIRECTION_FROM_HOST ? VMMDevHGCMParmType_LinAddr_Out
                                                                        : VMMDevHGCMParmType_LinAddr;
    hg_call_linaddr(call, index, type, data, size);
    return VINF_SUCCESS;
}

static int make_path(struct shfl_path *path, const char *text) {
    size_t length = strnlen(text, SF_MAX_PATH + 1);
    if (length > SF_MAX_PATH)
        return VERR_INVALID_PARAMETER;
    path->header.u16Length = (uint16_t)length;
    path->header.u16Size = (uint16_t)(length + 1);
    memcpy(path->bytes, text, length + 1);
    return VINF_SUCCESS;
}

static uint32_t path_bytes(const struct shfl_path *path) { return sizeof path->header + path->header.u16Size; }

/* Submit a built call unless building it failed (rc < 0); the caller ends it. */
static int finish(hg_call *call, int rc) {
    if (rc >= 0)
        rc = hg_call_submit(call);
    return rc;
}

int sf_connect(uint32_t *client) {
    int rc = hg_connect("VBoxSharedFolders", client);
    if (rc < 0)
        return rc;
    hg_call call;
    rc = hg_call_begin(&call, *client, SHFL_FN_SET_UTF8, 0);
    if (rc < 0)
        return rc;
    rc = hg_call_submit(&call);
    hg_call_end(&call);
    return rc;
}

int sf_disconnect(uint32_t client) { return hg_disconnect(client); }

int sf_map(uint32_t client, const char *share, uint32_t *root) {
    struct shfl_path name;
    hg_call call;
    int rc = make_path(&name, share);
    if (rc < 0 || (rc = hg_call_begin(&call, client, SHFL_FN_MAP_FOLDER, SHFL_CPARMS_MAP_FOLDER)) < 0)
        return rc;
    rc = buffer(&call, 0, VBOX_HGCM_F_PARM_DIRECTION_TO_HOST, &name, path_bytes(&name));
    hg_call_u32(&call, 1, 0);
    hg_call_u32(&call, 2, '/');
    hg_call_u32(&call, 3, 1);
    rc = finish(&call, rc);
    if (rc >= 0)
        *root = hg_call_get_u32(&call, 1);
    hg_call_end(&call);
    return rc;
}

int sf_unmap(uint32_t client, uint32_t root) {
    hg_call call;
    int rc = hg_call_begin(&call, client, SHFL_FN_UNMAP_FOLDER, 1);
    if (rc < 0)
        return rc;
    hg_call_u32(&call, 0, root);
    rc = hg_call_submit(&call);
    hg_call_end(&call);
    return rc;
}

int sf_create(uint32_t client, uint32_t root, const char *path, ShflCreateParms *parms) {
    struct shfl_path name;
    hg_call call;
    int rc = make_path(&name, path);
    if (rc < 0 || (rc = hg_call_begin(&call, client, SHFL_FN_CREATE, SHFL_CPARMS_CREATE)) < 0)
        return rc;
    hg_call_u32(&call, 0, root);
    rc = buffer(&call, 1, VBOX_HGCM_F_PARM_DIRECTION_TO_HOST, &name, path_bytes(&name));
    if (rc >= 0)
        rc = buffer(&call, 2, VBOX_HGCM_F_PARM_DIRECTION_BOTH, parms, sizeof *parms);
    rc = finish(&call, rc);
    hg_call_end(&call);
    return rc;
}

int sf_open(uint32_t client, uint32_t root, const char *path, uint32_t create_flags, uint64_t *handle) {
    ShflCreateParms parms;
    memset(&parms, 0, sizeof parms);
    parms.Handle = SHFL_HANDLE_NIL;
    parms.CreateFlags = create_flags;
    int rc = sf_create(client, root, path, &parms);
    if (rc < 0)
        return rc;
    if (parms.Handle == SHFL_HANDLE_NIL)
        return parms.Result == SHFL_PATH_NOT_FOUND   ? VERR_PATH_NOT_FOUND
               : parms.Result == SHFL_FILE_NOT_FOUND ? VERR_FILE_NOT_FOUND
                                                     : VERR_ALREADY_EXISTS;
    *handle = parms.Handle;
    return rc;
}

int sf_close(uint32_t client, uint32_t root, uint64_t handle) {
    hg_call call;
    int rc = hg_call_begin(&call, client, SHFL_FN_CLOSE, SHFL_CPARMS_CLOSE);
    if (rc < 0)
        return rc;
    hg_call_u32(&call, 0, root);
    hg_call_u64(&call, 1, handle);
    rc = hg_call_submit(&call);
    hg_call_end(&call);
    return rc;
}

/* READ and WRITE share their five parameters. */
static int transfer(uint32_t function, uint32_t direction, uint32_t client, uint32_t root, uint64_t handle,
                    uint64_t offset, const void *data, uint32_t *size) {
    hg_call call;
    int rc = hg_call_begin(&call, client, function, function == SHFL_FN_READ ? SHFL_CPARMS_READ : SHFL_CPARMS_WRITE);
    if (rc < 0)
        return rc;
    hg_call_u32(&call, 0, root);
    hg_call_u64(&call, 1, handle);
    hg_call_u64(&call, 2, offset);
    hg_call_u32(&call, 3, *size);
    rc = finish(&call, buffer(&call, 4, direction, data, *size));
    *size = rc >= 0 ? hg_call_get_u32(&call, 3) : 0;
    hg_call_end(&call);
    return rc;
}

int sf_read(uint32_t client, uint32_t root, uint64_t handle, uint64_t offset, void *data, uint32_t *size) {
    return transfer(SHFL_FN_READ, VBOX_HGCM_F_PARM_DIRECTION_FROM_HOST, client, root, handle, offset, data, size);
}

int sf_write(uint32_t client, uint32_t root, uint64_t handle, uint64_t offset, const void *data, uint32_t *size) {
    return transfer(SHFL_FN_WRITE, VBOX_HGCM_F_PARM_DIRECTION_TO_HOST, client, root, handle, offset, data, size);
}

int sf_list(uint32_t client, uint32_t root, uint64_t handle, uint32_t flags, void *data, uint32_t *size,
            uint32_t *count) {
    hg_call call;
    int rc = hg_call_begin(&call, client, SHFL_FN_LIST, SHFL_CPARMS_LIST);
    if (rc < 0)
        return rc;
    hg_call_u32(&call, 0, root);
    hg_call_u64(&call, 1, handle);
    hg_call_u32(&call, 2, flags);
    hg_call_u32(&call, 3, *size);
    hg_call_linaddr(&call, 4, VMMDevHGCMParmType_LinAddr_In, NULL, 0); /* no filter: size 0 */
    rc = buffer(&call, 5, VBOX_HGCM_F_PARM_DIRECTION_FROM_HOST, data, *size);
    hg_call_u32(&call, 6, 0);
    hg_call_u32(&call, 7, 0);
    rc = finish(&call, rc);
    *size = rc >= 0 ? hg_call_get_u32(&call, 3) : 0;
    *count = rc >= 0 ? hg_call_get_u32(&call, 7) : 0;
    hg_call_end(&call);
    return rc;
}

int sf_remove(uint32_t client, uint32_t root, const char *path, uint32_t flags) {
    struct shfl_path name;
    hg_call call;
    int rc = make_path(&name, path);
    if (rc < 0 || (rc = hg_call_begin(&call, client, SHFL_FN_REMOVE, SHFL_CPARMS_REMOVE)) < 0)
        return rc;
    hg_call_u32(&call, 0, root);
    hg_call_u32(&call, 2, flags);
    rc = finish(&call, buffer(&call, 1, VBOX_HGCM_F_PARM_DIRECTION_TO_HOST, &name, path_bytes(&name)));
    hg_call_end(&call);
    return rc;
}
