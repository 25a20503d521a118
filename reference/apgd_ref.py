"""Writes test/fixtures/apgd-reference.json: APGD-CE and APGD-T runs (Croce &
Hein, ICML 2020) under the L-infinity norm on a linear classifier, computed in
float64 by a PyTorch port of the algorithm as the authors' AutoAttack code
runs it (autoattack/autopgd_base.py, APGDAttack.attack_single_run and
APGDAttack_targeted.perturb): random start, step size 2 eps, momentum 0.75,
checkpoints at 0.22 K shrinking by 0.03 K to 0.06 K, the step halved where the
loss rose in at most rho = 0.75 of the interval or did not improve since an
unhalved checkpoint, the iterate restored to the best point there.

The start noise t (uniform in [-1, 1]) is drawn here and stored, so that the
TypeScript attack can start from the same point; the fixture records, per run,
the step size of every image after each iteration, which images end robust,
the point kept for each image and the final losses.

Run with Debian's PyTorch:  /usr/bin/python3 reference/apgd_ref.py
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from make_fixtures import enc  # noqa: E402  (the fixtures' tensor encoding)

torch.set_default_dtype(torch.float64)

RHO = 0.75
SHAPE = (4, 4, 3)   # one image, NHWC; flattened in that order, so channel = index % 3
CLASSES = 5
MEAN = torch.tensor([0.4, 0.5, 0.6])
STD = torch.tensor([0.2, 0.25, 0.3])


def f32(t):
    """Rounded to float32 and back: the values the float32 side will hold."""
    return t.float().double()


class Linear:
    """logits = ((x - mean) / std) W + b on flattened NHWC images."""

    def __init__(self, g):
        d = SHAPE[0] * SHAPE[1] * SHAPE[2]
        self.w = f32(torch.rand(d, CLASSES, generator=g) * 2 - 1)
        self.b = f32((torch.rand(CLASSES, generator=g) * 2 - 1) * 0.5)
        self.mean = MEAN.repeat(d // 3)
        self.std = STD.repeat(d // 3)

    def __call__(self, x):
        return ((x - self.mean) / self.std) @ self.w + self.b


def ce(z, y):
    return torch.nn.functional.cross_entropy(z, y, reduction='none')


def dlr_targeted(target):
    def loss(z, y):
        s = z.sort(dim=1)[0]
        u = torch.arange(z.shape[0])
        return -(z[u, y] - z[u, target]) / (s[:, -1] - 0.5 * (s[:, -3] + s[:, -4]) + 1e-12)
    return loss


def loss_grad(model, x, y, loss):
    x = x.clone().requires_grad_(True)
    z = model(x)
    values = loss(z, y)
    grad = torch.autograd.grad(values.sum(), [x])[0]
    return values.detach(), grad, z.detach().argmax(1) == y


def single_run(model, x, y, eps, n_iter, loss, t):
    """One APGD run from x + eps t / max|t|; returns per-iteration step sizes, robust flags, kept points, best losses."""
    n = x.shape[0]
    first = max(int(0.22 * n_iter), 1)
    minimum = max(int(0.06 * n_iter), 1)
    decrease = max(int(0.03 * n_iter), 1)
    x_adv = (x + eps * t / (t.abs().max(dim=1, keepdim=True)[0] + 1e-12)).clamp(0, 1)
    x_best = x_adv.clone()
    x_best_adv = x_adv.clone()
    loss_steps = torch.zeros(n_iter, n)
    values, grad, correct = loss_grad(model, x_adv, y, loss)
    grad_best = grad.clone()
    robust = correct.clone()
    loss_best = values.clone()
    step = 2 * eps * torch.ones(n, 1)
    x_old = x_adv.clone()
    k = first
    since = 0
    loss_best_last = loss_best.clone()
    reduced_last = torch.ones(n)
    steps = []

    def project(z):
        return torch.clamp(torch.min(torch.max(z, x - eps), x + eps), 0, 1)

    for i in range(n_iter):
        momentum = x_adv - x_old
        x_old = x_adv.clone()
        a = 0.75 if i > 0 else 1.0
        z = project(x_adv + step * torch.sign(grad))
        x_adv = project(x_adv + (z - x_adv) * a + momentum * (1 - a))
        values, grad, correct = loss_grad(model, x_adv, y, loss)
        robust = robust & correct
        x_best_adv[~correct] = x_adv[~correct]
        loss_steps[i] = values
        better = values > loss_best
        x_best[better] = x_adv[better]
        grad_best[better] = grad[better]
        loss_best[better] = values[better]
        since += 1
        if since == k:
            rises = torch.zeros(n)
            for c in range(k):
                # At the first checkpoint row -1 is the last, still zero, row of the table, as in the authors' code.
                rises += (loss_steps[i - c] > loss_steps[i - c - 1]).double()
            halve = (rises <= k * RHO) | ((reduced_last == 0) & (loss_best_last >= loss_best))
            reduced_last = halve.double()
            loss_best_last = loss_best.clone()
            step[halve] /= 2
            x_adv[halve] = x_best[halve]
            grad[halve] = grad_best[halve]
            k = max(k - decrease, minimum)
            since = 0
        steps.append(step[:, 0].clone())
    kept = torch.where(robust[:, None], x_adv, x_best_adv)
    return {'steps': torch.stack(steps), 'robust': robust, 'kept': kept, 'lossBest': loss_best}


def case(g, name, n, eps, n_iter, targeted):
    model = Linear(g)
    x = f32(torch.rand(n, SHAPE[0] * SHAPE[1] * SHAPE[2], generator=g))
    y = torch.randint(0, CLASSES, (n,), generator=g)
    t = f32(torch.rand(n, x.shape[1], generator=g) * 2 - 1)
    if targeted:
        # The class with the 2nd largest clean logit, as APGD-T's first target.
        target = model(x).sort(dim=1)[1][:, -2]
        loss = dlr_targeted(target)
    else:
        loss = ce
    out = single_run(model, x, y, eps, n_iter, loss, t)
    nhwc = (n,) + SHAPE
    return {
        'name': name, 'eps': eps, 'steps': n_iter, 'targeted': targeted,
        'w': enc(model.w), 'b': enc(model.b), 'x': enc(x.reshape(nhwc)), 'labels': y.tolist(),
        'start': enc(t.reshape(nhwc)),
        'target': target.tolist() if targeted else None,
        'stepSizes': enc(out['steps']), 'robust': [int(r) for r in out['robust']],
        'kept': enc(out['kept'].reshape(nhwc)), 'lossBest': enc(out['lossBest']),
    }


def main():
    g = torch.Generator().manual_seed(20200303)
    doc = {
        'source': 'reference/apgd_ref.py (a float64 port of AutoAttack\'s APGD, L-infinity)',
        'torch': torch.__version__,
        'shape': list(SHAPE), 'classes': CLASSES, 'mean': MEAN.tolist(), 'std': STD.tolist(),
        'cases': [case(g, 'APGD-CE, 20 iterations', 12, 8 / 255, 20, False),
                  case(g, 'APGD-CE, 100 iterations', 12, 4 / 255, 100, False),
                  case(g, 'APGD-T (DLR), 30 iterations', 12, 8 / 255, 30, True)],
    }
    path = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'apgd-reference.json')
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(doc, f, separators=(',', ':'))
    os.replace(tmp, path)
    print(f"wrote {len(doc['cases'])} APGD cases to {os.path.normpath(path)}")


if __name__ == '__main__':
    main()
