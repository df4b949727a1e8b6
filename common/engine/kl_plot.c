#include "common/engine/kl_plot.h"
#include "common/atomic.h"
#include "common/err.h"
#include "common/fsutil.h"

#include <cairo-svg.h>
#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

enum { WIDTH = 800, HEIGHT = 450, LEFT = 70, RIGHT = 20, TOP = 40, BOTTOM = 50 };

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

int kl_plot_format_known(const char *path)
{
    return ends_with(path, ".png") || ends_with(path, ".svg");
}

static cairo_status_t to_fd(void *closure, const unsigned char *data, unsigned int length)
{
    return write_all(*(int *)closure, data, length) == 0 ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

/* A round step for about five ticks up to `top`. */
static double tick_step(double top)
{
    double raw = top / 5, mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

static void text_at(cairo_t *cr, double x, double y, const char *s, double align)
{
    cairo_text_extents_t ext;
    cairo_text_extents(cr, s, &ext);
    cairo_move_to(cr, x - align * ext.width, y);
    cairo_show_text(cr, s);
}

static void draw(cairo_t *cr, const struct check_report *r)
{
    static const double colours[][3] = {{0.12, 0.47, 0.71}, {1.0, 0.5, 0.05}, {0.17, 0.63, 0.17},
                                        {0.84, 0.15, 0.16}, {0.58, 0.4, 0.74}, {0.55, 0.34, 0.29}};
    size_t longest = 1;
    double top = 0;
    for (size_t i = 0; i < r->n; i++) {
        const struct prompt_check *p = &r->prompts[i];
        if (p->nkl > longest) longest = p->nkl;
        for (size_t k = 0; k < p->nkl; k++)
            if (isfinite(p->kl[k]) && p->kl[k] > top) top = p->kl[k];
    }
    if (!(top > 0)) top = 1e-3;
    double step = tick_step(top);
    top = ceil(top / step) * step;
    double pw = WIDTH - LEFT - RIGHT, ph = HEIGHT - TOP - BOTTOM;
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 12);
    cairo_set_source_rgb(cr, 0, 0, 0);
    char label[96];
    snprintf(label, sizeof label, "KL divergence from the reference per answer token (mean %.4f nats)", r->kls.mean);
    text_at(cr, WIDTH / 2.0, 24, label, 0.5);
    text_at(cr, LEFT + pw / 2, HEIGHT - 12, "answer token", 0.5);
    /* axes and ticks */
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, LEFT, TOP, pw, ph);
    cairo_stroke(cr);
    for (double y = 0; y <= top * 1.0001; y += step) {
        double py = TOP + ph - y / top * ph;
        cairo_move_to(cr, LEFT - 4, py);
        cairo_line_to(cr, LEFT, py);
        cairo_stroke(cr);
        snprintf(label, sizeof label, "%g", y);
        text_at(cr, LEFT - 8, py + 4, label, 1);
    }
    double xstep = tick_step((double)longest);
    if (xstep < 1) xstep = 1;
    for (double x = 0; x <= (double)longest; x += xstep) {
        double px = LEFT + x / (double)longest * pw;
        cairo_move_to(cr, px, TOP + ph);
        cairo_line_to(cr, px, TOP + ph + 4);
        cairo_stroke(cr);
        snprintf(label, sizeof label, "%g", x);
        text_at(cr, px, TOP + ph + 18, label, 0.5);
    }
    cairo_save(cr);
    cairo_translate(cr, 22, TOP + ph / 2);
    cairo_rotate(cr, -M_PI / 2);
    text_at(cr, 0, 0, "KL (nats)", 0.5);
    cairo_restore(cr);
    /* one line per prompt, and its legend entry */
    cairo_set_line_width(cr, 1.5);
    for (size_t i = 0; i < r->n; i++) {
        const struct prompt_check *p = &r->prompts[i];
        const double *c = colours[i % 6];
        cairo_set_source_rgb(cr, c[0], c[1], c[2]);
        for (size_t k = 0; k < p->nkl; k++) {
            double v = isfinite(p->kl[k]) ? p->kl[k] : top;
            double px = LEFT + (double)k / (double)longest * pw, py = TOP + ph - v / top * ph;
            if (k) cairo_line_to(cr, px, py);
            else cairo_move_to(cr, px, py);
        }
        cairo_stroke(cr);
        snprintf(label, sizeof label, "prompt %zu: median %.4f, 99%% %.4f", i + 1, p->kls.median, p->kls.p99);
        text_at(cr, WIDTH - RIGHT - 10, TOP + 18 + 16 * (double)i, label, 1);
    }
}

int kl_plot_write(const char *path, const struct check_report *r)
{
    if (!kl_plot_format_known(path)) return fail("--plot %s: the plot is drawn as .png or .svg", path);
    struct atomic_file f;
    if (atomic_file_begin(&f, path) != 0) return -1;
    bool svg = ends_with(path, ".svg");
    cairo_surface_t *s = svg ? cairo_svg_surface_create_for_stream(to_fd, &f.fd, WIDTH, HEIGHT)
                             : cairo_image_surface_create(CAIRO_FORMAT_RGB24, WIDTH, HEIGHT);
    cairo_t *cr = cairo_create(s);
    draw(cr, r);
    cairo_destroy(cr);
    cairo_status_t st;
    if (svg) {
        cairo_surface_finish(s);
        st = cairo_surface_status(s);
    } else {
        st = cairo_surface_write_to_png_stream(s, to_fd, &f.fd);
    }
    cairo_surface_destroy(s);
    if (st != CAIRO_STATUS_SUCCESS) {
        atomic_file_abort(&f);
        return fail("%s: cannot write the plot: %s", path, cairo_status_to_string(st));
    }
    return atomic_file_commit(&f);
}
