"""tiny-model.py - write a tiny llama-architecture GGUF model with fixed pseudo-random weights.

It is no language model: its weights are noise from a fixed seed. It exists so that the runtime
can be proven end to end (load, tokenize, decode, greedy sampling) with a model that is small,
built from source, and bit-for-bit the same on every machine.

  python3 tiny-model.py --vocab ggml-vocab-llama-spm.gguf --out model.gguf [--dim 64] [--layers 2] ...

The tokenizer (every tokenizer.* key) is copied from a tokenizer-only GGUF of llama.cpp's own
models/ folder; the writer is llama.cpp's gguf-py (on PYTHONPATH). The weights come from
splitmix64 over (seed, tensor index, element index), computed in integer arithmetic, so they do not
depend on numpy's random generators. 2-D weights are quantized to Q4_0, the 4-bit format of the
runtime's target workload, so the 4-bit kernels are what the test exercises.
"""
import argparse
import sys

import numpy as np
import gguf

MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(x):
    """splitmix64's output function over an array of uint64 counters (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def weights(seed, index, shape, scale):
    """Uniform in [-scale, scale): the top 24 bits of splitmix64(seed, index, i) as a float32."""
    n = int(np.prod(shape))
    counters = (np.uint64(seed) << np.uint64(40)) ^ (np.uint64(index) << np.uint64(32)) ^ np.arange(n, dtype=np.uint64)
    bits = (splitmix64(counters) >> np.uint64(40)).astype(np.float64)
    return (((bits / float(1 << 23)) - 1.0) * scale).astype(np.float32).reshape(shape)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--vocab", required=True, help="tokenizer-only GGUF to copy tokenizer.* from")
    p.add_argument("--out", required=True)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--ffn", type=int, default=128)
    p.add_argument("--ctx", type=int, default=256)
    p.add_argument("--seed", type=int, default=17)
    p.add_argument("--name", default="kiln-tiny-llama")
    a = p.parse_args()

    vocab = gguf.GGUFReader(a.vocab)
    tokens = vocab.fields["tokenizer.ggml.tokens"]
    n_vocab = len(tokens.data)
    head_dim = a.dim // a.heads

    w = gguf.GGUFWriter(a.out, "llama")
    w.add_name(a.name)
    w.add_context_length(a.ctx)
    w.add_embedding_length(a.dim)
    w.add_block_count(a.layers)
    w.add_feed_forward_length(a.ffn)
    w.add_head_count(a.heads)
    w.add_head_count_kv(a.heads)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0)
    # the tokenizer, key by key, with the reader's own types
    for key, field in vocab.fields.items():
        if not key.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            w.add_key_value(key, field.contents(), vtype, sub_type=field.types[-1])
        else:
            w.add_key_value(key, field.contents(), vtype)

    index = 0

    def tensor(name, shape, scale=None):
        """shape in numpy order (rows, columns); a 1-D tensor is a norm: all ones."""
        nonlocal index
        index += 1
        if len(shape) == 1:
            w.add_tensor(name, np.ones(shape, dtype=np.float32))
            return
        data = weights(a.seed, index, shape, scale if scale is not None else 1.0 / np.sqrt(shape[1]))
        q = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q4_0)
        w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q4_0)

    tensor("token_embd.weight", (n_vocab, a.dim), scale=1.0)
    for i in range(a.layers):
        tensor(f"blk.{i}.attn_norm.weight", (a.dim,))
        tensor(f"blk.{i}.attn_q.weight", (a.dim, a.dim))
        tensor(f"blk.{i}.attn_k.weight", (a.dim, a.dim))
        tensor(f"blk.{i}.attn_v.weight", (a.dim, a.dim))
        tensor(f"blk.{i}.attn_output.weight", (a.dim, a.dim))
        tensor(f"blk.{i}.ffn_norm.weight", (a.dim,))
        tensor(f"blk.{i}.ffn_gate.weight", (a.ffn, a.dim))
        tensor(f"blk.{i}.ffn_up.weight", (a.ffn, a.dim))
        tensor(f"blk.{i}.ffn_down.weight", (a.dim, a.ffn))
    tensor("output_norm.weight", (a.dim,))
    tensor("output.weight", (n_vocab, a.dim))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"{a.out}: llama, {a.layers} layers, {a.dim} wide, {a.heads} heads, ffn {a.ffn}, vocab {n_vocab}, Q4_0, seed {a.seed}", file=sys.stderr)


if __name__ == "__main__":
    main()
