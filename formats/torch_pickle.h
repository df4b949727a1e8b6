/* A restricted unpickler for PyTorch state_dict pickles (the data.pkl of a
 * torch.save zip). It understands only the opcodes a state_dict uses and
 * only the globals of its vocabulary: collections.OrderedDict,
 * torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and the
 * torch.*Storage types named in persistent ids. Every other global is refused
 * with an error naming it, before anything could be called: nothing from a
 * checkpoint is ever executed. Every length, index and count is checked
 * against the input. */
#ifndef MLC_TORCH_PICKLE_H
#define MLC_TORCH_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "formats/dtype.h"

#define TP_MAX_DIMS 8
/* What a pickle may build: about 30 objects per tensor make a state_dict,
 * so these allow some 30000 tensors in one file while keeping the
 * unpickler under ~150 MB whatever the pickle says. */
#define TP_MAX_OBJECTS 1048576
#define TP_MAX_ITEMS 4194304
#define TP_LIMIT_TEXT_(n) #n
#define TP_LIMIT_TEXT(n) TP_LIMIT_TEXT_(n)

struct tp_tensor {
    char *name;               /* state_dict key */
    char *storage_key;        /* zip entry data/KEY */
    enum dtype dtype;         /* from the storage type; DT_INVALID if unsupported */
    const char *storage_type; /* "BFloat16Storage", ... */
    uint64_t storage_numel;   /* elements in the storage, from the persistent id */
    uint64_t offset;          /* storage offset, in elements */
    int ndim;
    int64_t shape[TP_MAX_DIMS];
    uint64_t numel;
};

struct tp_state_dict {
    struct tp_tensor *tensors; /* in the dict's order; None values skipped */
    size_t ntensors;
    size_t skipped_none;
};

/* Parse a pickle; `what` names it in messages ("x.bin: data.pkl"). */
int tp_parse_state_dict(const unsigned char *data, size_t len, const char *what, struct tp_state_dict *out);
void tp_state_dict_free(struct tp_state_dict *sd);

#endif
