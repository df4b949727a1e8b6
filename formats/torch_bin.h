/* PyTorch checkpoints (pytorch_model.bin): the torch.save zip archive read
 * with libarchive, its data.pkl through the restricted unpickler
 * (torch_pickle.h), tensor bytes from the data/KEY entries. */
#ifndef MLC_TORCH_BIN_H
#define MLC_TORCH_BIN_H

#include <stddef.h>
#include <stdint.h>

#include "formats/torch_pickle.h"

struct tb_entry {
    char *key;               /* storage key (data/KEY) */
    uint64_t size;
};

struct tb_file {
    char *path;
    char *prefix;            /* "archive/" in "archive/data.pkl" */
    struct tp_state_dict sd;
    struct tb_entry *entries;
    size_t nentries;
};

/* A storage may be larger than the tensors viewing it by this much, and
 * by as much again as they use (a view of part of a saved tensor). */
#define TB_STORAGE_SLACK (1u << 20)

/* Reads the archive's directory and data.pkl; checks every tensor's storage
 * entry exists, is as large as its persistent id says and is not far
 * larger than its tensors (TB_STORAGE_SLACK). */
int tb_open(struct tb_file *f, const char *path);
void tb_close(struct tb_file *f);
/* The bytes of tensor i (malloc'ed; caller frees): only those of its
 * view are inflated. */
int tb_read_tensor(struct tb_file *f, size_t i, void **data, size_t *len);

#endif
