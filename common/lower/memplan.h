/* Memory planning: give every activation of a function an offset in one
 * arena. With reuse, a value's slot is free for others once its last reader
 * has run (a greedy first-fit by definition order, sizes at their bounds);
 * without, every value gets a slot of its own. Deterministic. */
#ifndef MLC_MEMPLAN_H
#define MLC_MEMPLAN_H

#include <stdbool.h>

#include "formats/module.h"

#define ARENA_ALIGN 64

void memplan_function(struct function *f, bool reuse);
/* True if every activation of f has a slot. */
bool memplan_is_planned(const struct function *f);

#endif
