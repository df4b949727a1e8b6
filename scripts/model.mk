# The same workflow as a make graph: every stage reads and writes files, so
# make rebuilds exactly what an input change affects, and every output is
# written atomically and reproducibly (a second run does nothing).
#
#   make -f scripts/model.mk MODEL=tests/fixtures/stories260K QUANT=q4f16_1 OUT=dist/stories
#   make -f scripts/model.mk ... check         # load, generate, judge
#   make -f scripts/model.mk ... clean
#
# The stream files (*.mp) keep each stage's records for inspection with
# mlc-dump. BIN may point at a build directory's bin/ (default: the PATH).

MODEL ?= tests/fixtures/stories260K
QUANT ?= q4f16_1
OUT   ?= dist/$(notdir $(MODEL))-$(QUANT)
BIN   ?=
CHECK_FLAGS ?=

LIB := $(OUT)/$(notdir $(OUT))-cpu.tar
SOURCES := $(wildcard $(MODEL)/*.json $(MODEL)/*.safetensors $(MODEL)/*.bin $(MODEL)/tokenizer.model)

.PHONY: all check clean
.DELETE_ON_ERROR:

all: $(LIB)

$(OUT)/mlc-chat-config.json: $(SOURCES)
	@mkdir -p $(OUT)
	$(BIN)mlc-cfg -q --model $(MODEL) --quantization $(QUANT) -o $(OUT) --stream $(OUT)/config.mp </dev/null

$(OUT)/tensor-cache.json: $(OUT)/mlc-chat-config.json $(SOURCES)
	$(BIN)mlc-quant -q --model $(MODEL) --config $(OUT)/mlc-chat-config.json -o $(OUT) --stream $(OUT)/weights.mp </dev/null

$(OUT)/module.mp: $(OUT)/mlc-chat-config.json $(OUT)/tensor-cache.json
	$(BIN)mlc-lower -q --config $(OUT)/mlc-chat-config.json --weights $(OUT) --stream $@ </dev/null

$(LIB): $(OUT)/module.mp
	$(BIN)mlc-emit -q --module $(OUT)/module.mp -o $@ --stream $(OUT)/library.mp </dev/null

check: $(LIB)
	$(BIN)mlc-check --library $(LIB) --model $(OUT) $(CHECK_FLAGS) --stream $(OUT)/check.mp </dev/null

clean:
	rm -rf $(OUT)
