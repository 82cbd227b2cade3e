"""Fuzz the shipped option files: a typo in any key at any level, a negative number, a number or boolean written
as a string — every such mutation must fail in the pre-flight (before BasicSR creates a folder, so before the
first iteration) with a message that names the mutated key and the file. Mutations are generated from the
files themselves, so a key added to a shipped file is fuzzed without touching this test."""
import copy
import os

import pytest
import yaml

from sdakd_basicsr.distill.preflight import check_options, read_options

from tests.helpers import REPO, STUDENT_G, TEACHER_G, TEACHER_G_FILE, shrink, tiny_options, write_options

# Places where a mutation is legitimately valid, with the reason (kept short and explicit).
FREE_NAMES = {('val', 'metrics'): 'metric names are the user\'s labels'}
ANY_NUMBER = {'real_label_val', 'fake_label_val'}  # GAN targets: any real number is a valid (if odd) label


def _demo_stage(stage: int) -> dict:
    """A demo stage file on the tiny paired data of the test root."""
    with open(os.path.join(REPO, 'options', 'demo', f'sdakd_demo_stage{stage}.yml')) as f:
        opt = yaml.safe_load(f)
    opt['network_g'].update(STUDENT_G)
    opt['sdakd']['teacher_g'].update(network=dict(TEACHER_G), path=TEACHER_G_FILE)
    if 'network_d' in opt:
        opt['network_d']['num_feat'] = 4
    if 'network_d_teacher' in opt:
        opt['network_d_teacher']['num_feat'] = 8
    if opt['sdakd'].get('taps'):
        opt['sdakd']['taps'] = ['body.0', 'body.1', 'conv_body']
    train_set = opt['datasets']['train']
    train_set.update(dataroot_gt='datasets/val/gt', dataroot_lq='datasets/val/lq', gt_size=16, batch_size_per_gpu=2)
    train_set.pop('meta_info_file', None)
    train_set.pop('teacher_cache', None)  # (the cache is tested in test_teacher_cache and test_degraded_cache,
    train_set.pop('cache_variants', None)  # its variants' bad values too)
    train_set['type'] = 'PairedImageDataset'
    return opt


def sources() -> dict:
    out = {f'realesrgan_stage{s}': tiny_options(s) for s in (1, 2, 3)}
    with open(os.path.join(REPO, 'options', 'sdakd_realesrgan_x2_stage3.yml')) as f:
        x2 = shrink(yaml.safe_load(f))
    x2['sdakd']['teacher_g']['network']['scale'] = 2
    out['realesrgan_x2_stage3'] = x2
    out['demo_stage2'] = _demo_stage(2)
    out['demo_stage3'] = _demo_stage(3)
    return out


def _walk(node, path=()):
    """(path, value) for every key of every mapping (lists are values, not descended)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path + (key,), value
            yield from _walk(value, path + (key,))


def _typo(key: str) -> str:
    return key + key[-1] if key else 'x'


def mutations(opt: dict):
    """(description, key the message must name, mutated dict)."""
    for path, value in _walk(opt):
        parent, key = path[:-1], path[-1]
        if not isinstance(key, str) or parent in FREE_NAMES:
            continue

        def mutate(change):
            new = copy.deepcopy(opt)
            node = new
            for p in parent:
                node = node[p]
            change(node)
            return new
        typo = _typo(key)
        yield f'typo {".".join(map(str, path))} -> {typo}', typo, mutate(
            lambda node: node.__setitem__(typo, node.pop(key)))
        if isinstance(value, bool):
            yield f'{".".join(path)}: {value} -> the string', key, mutate(
                lambda node: node.__setitem__(key, str(value).lower()))
        elif isinstance(value, (int, float)) and key not in ANY_NUMBER:
            yield f'{".".join(path)}: {value} -> -7', key, mutate(lambda node: node.__setitem__(key, -7))
            yield f'{".".join(path)}: {value} -> "abc"', key, mutate(lambda node: node.__setitem__(key, 'abc'))
        elif isinstance(value, list) and value and not isinstance(value[0], (list, dict)):
            # a scalar where a list is meant (`taps: body.5`): never silently read as something else
            yield f'{".".join(map(str, path))}: {value} -> {value[0]!r}', key, mutate(
                lambda node: node.__setitem__(key, value[0]))
        elif isinstance(value, dict) and value and path not in FREE_NAMES:
            yield f'{".".join(map(str, path))}: a mapping -> "abc"', key, mutate(
                lambda node: node.__setitem__(key, 'abc'))


def _touch_previous_stages(opt: dict) -> None:
    """The checkpoints a stage loads exist (their contents are the loader's business, tested elsewhere)."""
    files = [v for k, v in (opt.get('path') or {}).items() if k.startswith('pretrain_network')]
    for value in files + [opt['sdakd']['teacher_g']['path']]:
        if isinstance(value, str) and not os.path.exists(value):
            os.makedirs(os.path.dirname(value), exist_ok=True)
            open(value, 'wb').close()


@pytest.mark.parametrize('name', sorted(sources()))
def test_every_mutation_fails_before_training_and_names_its_key(workdir, name):
    opt = sources()[name]
    _touch_previous_stages(opt)
    check_options(copy.deepcopy(opt), 'opt.yml', os.getcwd())  # the unmutated file passes
    silent, unnamed, count = [], [], 0
    for what, key, mutated in mutations(opt):
        count += 1
        try:
            check_options(mutated, 'opt.yml', os.getcwd())
        except (KeyError, ValueError, TypeError, OSError, RuntimeError) as err:
            message = err.args[0] if err.args and isinstance(err.args[0], str) else str(err)
            if key not in message or not message.startswith('opt.yml'):
                unnamed.append(f'{what}: {message[:160]}')
            continue
        silent.append(what)
    assert count > 150, count
    assert not silent, f'{len(silent)} of {count} mutations accepted:\n' + '\n'.join(silent)
    assert not unnamed, f'{len(unnamed)} of {count} messages do not name the key:\n' + '\n'.join(unnamed)


def test_a_key_given_twice_names_both_lines(workdir):
    path = write_options(tiny_options(1), 'options/_dup.yml')
    text = open(path).read().replace('manual_seed:', 'manual_seed: 5\nmanual_seed:', 1)
    open(path, 'w').write(text)
    with pytest.raises(ValueError, match=r"_dup.yml: line \d+: duplicate key 'manual_seed' \(first on line \d+\)"):
        read_options(['-opt', path])
