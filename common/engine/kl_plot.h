/* mlc-check --reference --plot FILE: the KL divergence between the compiled
 * model and its unquantized reference at each answer token, one line per
 * prompt, drawn with cairo as a PNG or an SVG (by FILE's extension) and
 * published atomically. */
#ifndef MLC_KL_PLOT_H
#define MLC_KL_PLOT_H

#include "common/engine/check.h"

/* -1 with last_error() on an unknown extension or a write error. */
int kl_plot_write(const char *path, const struct check_report *r);
/* 1 if path names a format kl_plot_write can draw (.png, .svg). */
int kl_plot_format_known(const char *path);

#endif
