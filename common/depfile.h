/* Dependency files for make and ninja (`--depfile FILE`): the files a stage
 * read, in make syntax ("TARGET: DEP DEP ..."), as gcc -MD writes them, so
 * that a build graph reruns the stage exactly when one of them changed.
 *
 * The readers of the library (read_file, the safetensors and PyTorch
 * readers, the tensor cache's shards, the library archive) note each file
 * they open while recording is on; a tool turns it on before its work and
 * writes the list at the end. Paths are kept as they were opened (so they
 * match the spelling of the build graph's own inputs), each once, in the
 * order first read. */
#ifndef MLC_DEPFILE_H
#define MLC_DEPFILE_H

/* Start recording (a tool given --depfile). */
void deps_record(void);
/* Note a file read (no-op unless recording). Thread-safe. */
void deps_note(const char *path);
/* Write "target: deps..." to `depfile` atomically (unchanged bytes leave it
 * alone). -1 on a write error. */
int deps_write(const char *depfile, const char *target);
/* Forget the list and stop recording. */
void deps_reset(void);

#endif
