"""Benchmark: SAR-KnowLIP pre-training throughput (SCIO stage 1 step: ITC + ITM + MLM, backward, AdamW step).

Prints training samples/s (median step time) and peak memory (GPU: torch.cuda.max_memory_allocated; CPU: n/a).
On a GPU the step runs under bf16 autocast (Accelerate's mixed precision); on CPU in fp32.

    python bench/bench_knowlip_train.py                                     # base preset, batch 32 (GPU)
    python bench/bench_knowlip_train.py --preset tiny --batch-size 8 --steps 5   # CPU smoke run
"""

from __future__ import annotations

import sys
import statistics
import time

import torch
from accelerate import Accelerator

from modeling_knowlip import SarKnowlipConfig, SarKnowlipModel, SarKnowlipProcessor, train_wordpiece_tokenizer
from modeling_sarclip import SarclipImageProcessor
from train.knowlip.scio_text import encode_subtexts
from train.knowlip.synthetic_texts import synthetic_scio_dataset
from sar_utils.command_line import ArgumentParser, run_cli


def main(argv=None) -> None:
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="base", choices=["tiny", "base", "large"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--vocab-size", type=int, default=30522, help="BERT-base size; a WordPiece is trained")
    args = parser.parse_args(argv)

    accelerator = Accelerator(mixed_precision="bf16" if torch.cuda.is_available() else "no")
    image_size = 32 if args.preset == "tiny" else 224
    data = synthetic_scio_dataset(args.batch_size, image_size, seed=0)
    tokenizer = train_wordpiece_tokenizer([" ".join(t) for t in data["subtexts"]], vocab_size=args.vocab_size)
    # the model's vocabulary is args.vocab_size (as BERT-base's), whatever the tiny corpus gave the tokenizer
    config = SarKnowlipConfig.from_preset(args.preset, tokenizer=tokenizer)
    for sub in (config.text_config, config.cross_encoder_config, config.decoder_config):
        sub.vocab_size = max(args.vocab_size, len(tokenizer))
    torch.manual_seed(0)
    model = SarKnowlipModel(config).train()
    processor = SarKnowlipProcessor(image_processor=SarclipImageProcessor(size=image_size), tokenizer=tokenizer)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.05)
    model, optimizer = accelerator.prepare(model, optimizer)
    encoded = encode_subtexts(tokenizer, list(data["subtexts"]), args.max_length)
    batch = {"pixel_values": processor.image_processor(list(data["image"]), return_tensors="pt")["pixel_values"],
             "input_ids": encoded.input_ids, "attention_mask": encoded.attention_mask,
             "image_ids": torch.arange(args.batch_size)}
    batch = {k: v.to(accelerator.device) for k, v in batch.items()}

    def sync():
        if accelerator.device.type == "cuda":
            torch.cuda.synchronize()

    times = []
    for step in range(args.warmup + args.steps):
        if step == args.warmup and accelerator.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        sync()
        start = time.perf_counter()
        with accelerator.autocast():
            loss = model(**batch, return_loss=True).loss
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    peak = (f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if accelerator.device.type == "cuda" else "n/a")
    params = sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6
    print(f"device: {accelerator.device} ({torch.cuda.get_device_name() if accelerator.device.type == 'cuda' else 'cpu'}),"
          f" precision: {accelerator.mixed_precision}, torch threads: {torch.get_num_threads()}")
    print(f"preset {args.preset}: {params:.1f} M trainable parameters, batch {args.batch_size}, "
          f"text length {batch['input_ids'].shape[1]} tokens, final loss {loss.item():.3f}")
    print(f"train: {args.batch_size / seconds:.1f} samples/s ({seconds * 1000:.1f} ms/step, median of {args.steps}), "
          f"peak memory: {peak}")


if __name__ == "__main__":
    sys.exit(run_cli(main))
