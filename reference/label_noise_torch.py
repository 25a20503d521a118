"""The label-noise cross-check in PyTorch: trains the small CNN with BN and with
the official ConvNorm layer (our port of the authors' PreConv,
reference/convnorm_ref.py) on the same CIFAR-10 images and the same corrupted
labels as `convnorm train` runs, with the same settings, and compares the final
clean test top-1 of the two frameworks, mean ± sample std over seeds.

For each run directory given (made by `convnorm train` or `convnorm sweep`),
it reads experiment.json (settings, data folder) and label-noise.json (which
training labels the noise changed, and to what), trains the same model in
PyTorch with the run's seed (its own initialization and shuffles: the
frameworks' random streams differ, so runs agree in distribution, not bit for
bit) and reads our final test top-1 from the run's metrics.jsonl.

    /usr/bin/python3 reference/label_noise_torch.py --threads 2 --json out.json RUN_DIR...
"""
import argparse
import json
import math
import os
import statistics
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from torch_models import small_cnn  # noqa: E402

MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32)
STD = np.array([0.2023, 0.1994, 0.2010], dtype=np.float32)


def read_cifar(root, split):
    names = [f'data_batch_{k}.bin' for k in range(1, 6)] if split == 'train' else ['test_batch.bin']
    images, labels = [], []
    for name in names:
        path = os.path.join(root, name)
        if not os.path.exists(path):
            continue
        raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 3073)
        labels.append(raw[:, 0].astype(np.int64))
        images.append(raw[:, 1:].reshape(-1, 3, 32, 32))
    if not images:
        raise SystemExit(f'no CIFAR-10 {split} batches in {root}')
    return np.concatenate(images), np.concatenate(labels)


def normalize(x):
    return (x / 255.0 - torch.from_numpy(MEAN)[None, :, None, None]) / torch.from_numpy(STD)[None, :, None, None]


def augment(batch, generator):
    """Random crop with 4-pixel zero padding and a horizontal flip, per image."""
    n = batch.shape[0]
    padded = F.pad(batch, (4, 4, 4, 4))
    rows = torch.randint(0, 9, (n,), generator=generator)
    cols = torch.randint(0, 9, (n,), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    out = torch.empty_like(batch)
    for i in range(n):
        crop = padded[i, :, rows[i]:rows[i] + 32, cols[i]:cols[i] + 32]
        out[i] = crop.flip(-1) if flips[i] else crop
    return out


def cosine_lr(base, epoch, epochs):
    """The learning rate of 0-based epoch `epoch`: CosineAnnealingLR stepped once per epoch, eta_min 0."""
    return 0.5 * base * (1 + math.cos(math.pi * epoch / epochs))


def evaluate(model, images, labels, batch=500):
    model.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, len(images), batch):
            x = normalize(torch.from_numpy(images[s:s + batch]).float())
            correct += (model(x).argmax(1).numpy() == labels[s:s + batch]).sum()
    return correct / len(images)


def train_like(run_dir):
    config = json.load(open(os.path.join(run_dir, 'experiment.json')))
    noise = json.load(open(os.path.join(run_dir, 'label-noise.json')))
    for key, want in [('dataset', 'cifar10'), ('model', 'small-cnn'), ('trainFraction', 1), ('validation', 0),
                      ('adv', 'none'), ('ocnnLambda', 0)]:
        if config[key] != want:
            raise SystemExit(f'{run_dir}: {key} is {config[key]!r}; this check covers {key} {want!r}')
    if config['schedule'] != 'cosine':
        raise SystemExit(f'{run_dir}: schedule {config["schedule"]}; this check covers plain cosine')
    images, labels = read_cifar(config['dataRoot'], 'train')
    test_images, test_labels = read_cifar(config['dataRoot'], 'test')
    noisy = labels.copy()
    noisy[np.array(noise['changedIndices'], dtype=np.int64)] = np.array(noise['changedNoisyLabels'], dtype=np.int64)
    assert (labels[noise['changedIndices']] == np.array(noise['changedTrueLabels'])).all(), 'not the run\'s images'

    seed, epochs, batch = config['seed'], config['epochs'], config['batchSize']
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    if config['norm'] not in ('bn', 'convnorm'):
        raise SystemExit(f"{run_dir}: norm {config['norm']}; this check covers bn and convnorm")
    model = small_cnn(config['norm'])
    opt = torch.optim.SGD(model.parameters(), lr=config['lr'], momentum=config['momentum'],
                          weight_decay=config['weightDecay'])
    x_all = torch.from_numpy(images).float()
    y_all = torch.from_numpy(noisy)
    augmented = config.get('augment', True) is not False
    for epoch in range(epochs):
        for group in opt.param_groups:
            group['lr'] = cosine_lr(config['lr'], epoch, epochs)
        model.train()
        order = torch.randperm(len(images), generator=generator)
        # As the trainer batches: full batches, and the rest when it holds two or more images.
        for s in range(0, len(images), batch):
            idx = order[s:s + batch]
            if len(idx) < 2:
                continue
            x = x_all[idx]
            if augmented:
                x = augment(x, generator)
            loss = F.cross_entropy(model(normalize(x)), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    torch_top1 = float(evaluate(model, test_images, test_labels))
    records = [json.loads(line) for line in open(os.path.join(run_dir, 'metrics.jsonl')) if line.strip()]
    return {'run': run_dir, 'norm': config['norm'], 'seed': seed, 'noise': config['noise'], 'epochs': epochs,
            'oursTestTop1': records[-1]['testTop1'], 'torchTestTop1': torch_top1}


def stats(values):
    return {'mean': statistics.mean(values), 'std': statistics.stdev(values) if len(values) > 1 else None,
            'values': values}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('runs', nargs='+', help='run directories of convnorm train (small CNN, CIFAR-10)')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--json', help='write the per-run results and the per-norm statistics here')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    for run in args.runs:
        r = train_like(run)
        print(f"{run}: ours {100 * r['oursTestTop1']:.2f} %, PyTorch {100 * r['torchTestTop1']:.2f} %", flush=True)
        results.append(r)
    summary = {}
    for norm in sorted({r['norm'] for r in results}):
        of = [r for r in results if r['norm'] == norm]
        summary[norm] = {'runs': len(of), 'ours': stats([r['oursTestTop1'] for r in of]),
                         'torch': stats([r['torchTestTop1'] for r in of])}
        o, t = summary[norm]['ours'], summary[norm]['torch']
        fmt = lambda s: f"{100 * s['mean']:.2f}" + ('' if s['std'] is None else f" ± {100 * s['std']:.2f}")
        print(f'{norm}: ours {fmt(o)} %, PyTorch {fmt(t)} % over {len(of)} seeds')
    if args.json:
        with open(args.json + '.tmp', 'w') as f:
            json.dump({'torch': torch.__version__, 'threads': args.threads, 'runs': results, 'norms': summary}, f,
                      indent=1)
        os.replace(args.json + '.tmp', args.json)


if __name__ == '__main__':
    main()
