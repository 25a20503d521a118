"""PyTorch side of `npm run bench`: Conv+BN and the official ConvNorm layer
(our port of the authors' PreConv, reference/convnorm_ref.py, in float32) on the
same layer shapes and networks as the TypeScript bench. Prints one JSON object.

    /usr/bin/python3 bench/torch_bench.py '{"threads": 2, "batches": [32], ...}'
"""
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'reference'))
from torch_models import network, unit  # noqa: E402


def median_ms(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main():
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(cfg.get('threads', 2))
    torch.manual_seed(0)
    out = {'torch': torch.__version__, 'threads': torch.get_num_threads(), 'layers': [], 'networks': []}
    for spec in cfg.get('layers', []):
        for batch in cfg['batches']:
            row = {'layer': spec['name'], 'batch': batch}
            x = torch.randn(batch, spec['inChannels'], spec['size'], spec['size'])
            for norm in ('bn', 'convnorm'):
                m = unit(spec['inChannels'], spec['filters'], 3, spec['strides'], norm).train()
                xg = x.clone().requires_grad_(True)

                def fwd():
                    with torch.no_grad():
                        m(x)

                def fwd_bwd():
                    m.zero_grad()
                    m(xg).sum().backward()
                row[f'{norm}Forward'] = median_ms(fwd, cfg['reps'])
                row[f'{norm}ForwardBackward'] = median_ms(fwd_bwd, cfg['reps'])
            out['layers'].append(row)
    for net in cfg.get('networks', []):
        for batch in cfg['batches']:
            for norm in ('bn', 'convnorm'):
                model = network(net, norm).train()
                opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
                x = torch.randn(batch, 3, 32, 32)
                y = torch.randint(0, 10, (batch,))

                def step():
                    opt.zero_grad()
                    F.cross_entropy(model(x), y).backward()
                    opt.step()
                ms = median_ms(step, cfg['steps'])
                out['networks'].append({'network': net, 'norm': norm, 'batch': batch, 'stepMs': ms,
                                        'imagesPerSecond': batch / ms * 1000})
    print(json.dumps(out))


if __name__ == '__main__':
    main()
