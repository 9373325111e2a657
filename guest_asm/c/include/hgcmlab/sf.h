/* hgcmlab/sf.h - Shared Folders client calls (the VBoxSharedFolders service), each one HGCM
 * call with the parameters of reference/sharedfolders-protocol.md.  Buffers and strings go
 * as page lists built from the page tables (the default, as Linux's vboxsf does) or, after
 * sf_set_buffer_kind(SF_BUFFERS_LINADDR), as LinAddr parameters the device translates.
 * Every function returns a VBox status (hgcmlab/hgcm.h); paths are UTF-8 (sf_connect turns
 * UTF-8 on) of at most SF_MAX_PATH bytes. */
#ifndef HGCMLAB_SF_H
#define HGCMLAB_SF_H

#include <stdint.h>
#include <hgcmlab/abi.h>

#define SF_MAX_PATH 255

enum sf_buffer_kind { SF_BUFFERS_PAGELIST = 0, SF_BUFFERS_LINADDR = 1 };
void sf_set_buffer_kind(enum sf_buffer_kind kind);

/* Connect to VBoxSharedFolders and send SET_UTF8. */
int sf_connect(uint32_t *client);
int sf_disconnect(uint32_t client);
/* MAP_FOLDER with '/' as delimiter, case-sensitive. */
int sf_map(uint32_t client, const char *share, uint32_t *root);
int sf_unmap(uint32_t client, uint32_t root);
/* CREATE with the caller's parms (CreateFlags and Info in, Handle and Result out). */
int sf_create(uint32_t client, uint32_t root, const char *path, ShflCreateParms *parms);
/* CREATE with `create_flags` (SHFL_CF_*); a call that succeeds without a handle answers
 * VERR_PATH_NOT_FOUND, VERR_FILE_NOT_FOUND or VERR_ALREADY_EXISTS from its Result. */
int sf_open(uint32_t client, uint32_t root, const char *path, uint32_t create_flags, uint64_t *handle);
int sf_close(uint32_t client, uint32_t root, uint64_t handle);
/* READ/WRITE *size bytes at offset; *size becomes the bytes transferred. */
int sf_read(uint32_t client, uint32_t root, uint64_t handle, uint64_t offset, void *buffer, uint32_t *size);
int sf_write(uint32_t client, uint32_t root, uint64_t handle, uint64_t offset, const void *buffer, uint32_t *size);
/* LIST a directory handle into buffer (*size bytes, at least 128): packed SHFLDIRINFO
 * records; *size becomes the bytes used, *count the records. */
int sf_list(uint32_t client, uint32_t root, uint64_t handle, uint32_t flags, void *buffer, uint32_t *size,
            uint32_t *count);
/* REMOVE with SHFL_REMOVE_FILE / SHFL_REMOVE_DIR flags. */
int sf_remove(uint32_t client, uint32_t root, const char *path, uint32_t flags);

#endif
