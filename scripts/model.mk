# The same workflow as a make graph: every stage reads and writes files, so
# make reruns a stage exactly when one of the files it read (its --depfile)
# or the scheme changed, and every output is written atomically and
# reproducibly (a second run does nothing).
#
#   make -f scripts/model.mk MODEL=tests/fixtures/stories260K QUANT=q4f16_1 OUT=dist/stories
#   make -f scripts/model.mk ... check         # load, generate, judge
#   make -f scripts/model.mk ... clean
#
# The stream files (*.mp) keep each stage's records for inspection with
# mlc-dump. BIN may point at a build directory's bin/ (default: the PATH).
#
# How it stays exact: a stage that would write the same bytes leaves its
# file and its mtime alone, and each stage runs under a stamp
# (OUT/.stamp-NAME) whose dependency file lists what the stage read; the
# real output hangs off the stamp with an empty recipe, so make looks at
# its mtime again after the stage ran and reruns the next stage only when
# the output really changed. build.ninja beside this file does the same
# with ninja's restat.

MODEL ?= tests/fixtures/stories260K
QUANT ?= q4f16_1
OUT   ?= dist/$(notdir $(MODEL))-$(QUANT)
BIN   ?=
CHECK_FLAGS ?=

LIB := $(OUT)/$(notdir $(OUT))-cpu.tar
S := $(OUT)/.stamp

.PHONY: all check clean
.DELETE_ON_ERROR:

all: $(LIB)

# The scheme is an input like a file: OUT/.scheme holds QUANT and changes
# (and with it everything after it) only when QUANT does. Written when the
# makefile is read, so that `make -n` plans the same rebuild.
ifeq ($(filter clean,$(MAKECMDGOALS)),)
$(shell mkdir -p '$(OUT)' && { echo '$(QUANT)' | cmp -s - '$(OUT)/.scheme' || echo '$(QUANT)' >'$(OUT)/.scheme'; })
endif

# the stage's dependency file, retargeted at its stamp, then the stamp
stamped = @sed -e '1s|^[^:]*:|$@:|' $@.tmp >$@.d && rm -f $@.tmp && touch $@

$(S)-config: $(OUT)/.scheme
	$(BIN)mlc-cfg -q --model $(MODEL) --quantization $(QUANT) -o $(OUT) --stream $(OUT)/config.mp --depfile $@.tmp </dev/null
	$(stamped)
$(OUT)/mlc-chat-config.json: $(S)-config ;

$(S)-weights: $(OUT)/mlc-chat-config.json
	$(BIN)mlc-quant -q --model $(MODEL) --config $(OUT)/mlc-chat-config.json -o $(OUT) --stream $(OUT)/weights.mp --depfile $@.tmp </dev/null
	$(stamped)
$(OUT)/tensor-cache.json: $(S)-weights ;

$(S)-module: $(OUT)/mlc-chat-config.json $(OUT)/tensor-cache.json
	$(BIN)mlc-lower -q --config $(OUT)/mlc-chat-config.json --weights $(OUT) --stream $(OUT)/module.mp --depfile $@.tmp </dev/null
	$(stamped)
$(OUT)/module.mp: $(S)-module ;

$(S)-library: $(OUT)/module.mp
	$(BIN)mlc-emit -q --module $(OUT)/module.mp -o $(LIB) --stream $(OUT)/library.mp --depfile $@.tmp </dev/null
	$(stamped)
$(LIB): $(S)-library ;

check: $(LIB)
	$(BIN)mlc-check --library $(LIB) --model $(OUT) $(CHECK_FLAGS) --stream $(OUT)/check.mp </dev/null

clean:
	rm -rf $(OUT)

-include $(wildcard $(S)-*.d)
