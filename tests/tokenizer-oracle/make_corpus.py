#!/usr/bin/python3
"""Write corpus.json: hard strings for tokenizer agreement tests.

Deterministic (no randomness): run again to regenerate the same file.
Categories: code, digit runs, whitespace runs, newlines, emoji, CJK,
Arabic, combining marks, contractions, special-token text, very long
words, empty, plus each of a set of base strings with leading/trailing
spaces.
"""
import json, sys

base = [
    "", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\n \n", "a", "A", "I", "x y",
    "Hello world", "Hello, world!", "hello   world", "Hello\tworld", "Hello\nworld", "Hello\n\nworld",
    "The quick brown fox jumps over the lazy dog.",
    "Once upon a time, there was a little girl named Lily.",
    " leading space", "trailing space ", "  two leading", "two trailing  ",
    # contractions, case variants
    "I'm", "you're", "he's", "we've", "they'll", "I'd", "don't", "can't", "won't", "It's",
    "I'M YOU'RE HE'S WE'VE THEY'LL I'D DON'T", "i'M", "O'Neil's", "rock 'n' roll", "'s", "''", "'''",
    "’s curly apostrophe’s", "“quoted” «guillemets» ‘single’",
    # digits
    "1", "12", "123", "1234", "12345", "123456", "1234567", "12345678901234567890",
    "3.14159", "1,000,000", "-42", "+7", "0x1F", "1e10", "2024-01-31", "12:34:56", "$100.00", "50%",
    "a1b2c3", "abc123def", "１２３", "٣٤٥", "२०२४", "Ⅻ", "½ ¾", "①②③", "2²³",
    # whitespace runs
    "a  b", "a   b", "a    b", "a\t\tb", "a \t b", "a\n\n\nb", "a \n b", "   \n   ", "\t\t\t", "a\u00a0b",
    "a\u2003b", "a\u3000b", "a\u200bb", "a\u2028b", "a\u0085b", "\u00a0", "x" + " " * 40 + "y",
    "\n" * 10, " " * 17, "end\n", "\nstart",
    # code
    "def f(x):\n    return x**2\n", "int main(void) { return 0; }",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
    "if x != None and y >= 3:\n        print(f\"{x=}\")",
    "#include <stdio.h>\n", "const x = () => { return `t${a}`; };", "SELECT * FROM t WHERE id = 1;",
    "<html><body><p class=\"x\">Hi</p></body></html>", "{\"key\": [1, 2, {\"n\": null}]}",
    "a->b->c", "x := y || z && !w", "@decorator\nclass A(B):\n    pass", "$ ls -la | grep '^d'",
    "    indented\n        more", "__init__", "snake_case_name", "camelCaseName", "kebab-case-name",
    "https://example.com/path?query=1&b=2#frag", "user@example.com", "C:\\Windows\\System32",
    "~/.bashrc", "...", "!!!", "???", "?!", "--", "---", "===", "***", "<>", "<<>>", "//", "/* */",
    # emoji
    "🤗", "😀😃😄", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷🇩🇪", "❤️", "I ❤️ NY", "emoji 🎉 party", "🙂 🙃",
    "a🤗b", "🏳️‍🌈", "☕", "✨✨✨",
    # CJK
    "你好", "你好，世界！", "我爱北京天安门。", "日本語のテキスト", "カタカナ", "ひらがな", "한국어 문장입니다",
    "中文English混合", "漢字", "𠀀𠀁", "　全角スペース", "（括弧）", "ＡＢＣ",
    # Arabic, Hebrew, others
    "مرحبا بالعالم", "العربية", "السلام عليكم", "שלום עולם", "Привет, мир!", "Ελληνικά",
    "हिन्दी", "தமிழ்", "ภาษาไทย", "Tiếng Việt", "Türkçe İstanbul", "Straße", "ÀÉÎÕÜ", "ǅ ǈ ǋ",
    # combining marks and normalization
    "e\u0301", "cafe\u0301", "café", "n\u0303", "A\u030a", "Å", "\u212b", "ﬁ ligature", "ｶ",
    "Ⓐⓑ", "x\u0308\u0304", "\u0301", "a\u0301\u0301\u0301", "İ", "ß", "ΣΑΣ", "ﬀ", "™", "…",
    "\u00bd", "\u2163", "Å\u0301", "\u1e9b\u0323",
    # special-token-like text
    "<s>", "</s>", "<unk>", "<pad>", "<bos>", "<eos>", "<s>Hello</s>", "<s> Hello </s>",
    "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", "<|endoftext|>", "<think>\n</think>",
    "<tool_call>", "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n", "<mask>",
    "[INST] Hi [/INST]", "<<SYS>>\nsys\n<</SYS>>", "<|im_start|>", "a<|im_end|>b", " <|eot_id|> ",
    "<|eot_id|><|eot_id|>", "<|eot_id", "|eot_id|>", "<0x41>", "<0x0A>", "▁", "▁▁", "▁hello", "Ġ", "Ċ",
    "<unused0>", "<start_of_image>", "[multimodal]", "<tool>x", "a@@b@@", " <tool> <tool>", "＠＠<tool>",
    # long words
    "a" * 100, "ab" * 60, "supercalifragilisticexpialidocious",
    "Pneumonoultramicroscopicsilicovolcanoconiosis", "x" * 300, "1" * 64, "😀" * 20,
    "antidisestablishmentarianism" * 3, "-" * 80, "=" * 50, "ThisIsAVeryLongCamelCaseIdentifierName",
    # bytes-ish / control
    "\x00", "a\x00b", "\x01\x02\x03", "\x7f", "\u0080", "\u00ff", "\ufeff", "\ufeffBOM", "\ufffd",
    "\u200d", "\u2060", "\U0010ffff", "\ue000", "tab\tand\tnewline\n",
    # mixed sentences
    "The year 2024 had 366 days; 1/3 of them were rainy.",
    "He said, \"I can't believe it's not butter!\"",
    "Email me at john.doe@mail.com or call +1 (555) 123-4567.",
    "In 1492, Columbus sailed the ocean blue.",
    "Numbers: 1 22 333 4444 55555 666666",
    "Mixed: abcDEF123ghi456 !@#$%^&*()_+-=[]{}|;':\",./<>?",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.",
    "What's 2+2? It's 4.",
    "Sentence one. Sentence two!  Sentence three?   Four.",
    "  Multiple   spaces   between   words  ",
    "Line1\nLine2\r\nLine3\rLine4",
    "¿Qué tal? ¡Muy bien!", "naïve coöperation résumé", "Ångström", "Zürich", "Ωmega αβγ",
    "日本の首都は東京です。Tokyo is the capital.", "مرحبا 123 hello", "שלום123", "русский текст 2024",
]

extra = []
for s in ["Hello", "world", "I'm", "123", "你好", "🤗", "<s>", "<|eot_id|>", "café", "def"]:
    extra += [" " + s, s + " ", "  " + s, s + "\n", "\n" + s, s + s, s + " " + s, s.upper(), s.lower()]

corpus = []
seen = set()
for s in base + extra:
    if s not in seen:
        seen.add(s)
        corpus.append(s)

json.dump(corpus, sys.stdout, ensure_ascii=True, indent=0)
sys.stdout.write("\n")
print(len(corpus), file=sys.stderr)
