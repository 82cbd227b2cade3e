"""Validation of an SDAKD model: BasicSR's metrics, PSNR against the teacher's (cached) output, and metrics
that cannot run on an image (NIQE on small or flat images) skipped with a warning instead of killing the run."""
import math
from os import path as osp
from typing import Dict

from basicsr.metrics import calculate_metric
from basicsr.utils import get_root_logger, imwrite, tensor2img


def validate(model, dataloader, current_iter, tb_logger, save_img: bool) -> None:
    was_training = model.is_train
    model.is_train = False  # validation pairs come from the loader, not from the synthesis
    try:
        _validate(model, dataloader, current_iter, tb_logger, save_img)
    finally:
        model.is_train = was_training


def _validate(model, dataloader, current_iter, tb_logger, save_img: bool) -> None:
    logger = get_root_logger()
    dataset_name = dataloader.dataset.opt['name']
    metrics_opt = dict(model.opt['val'].get('metrics') or {})
    value_range = model.sd.value_range
    teacher_fidelity = model.sd.teacher_fidelity and model.teacher_side is not None
    names = list(metrics_opt) + (['psnr_teacher'] if teacher_fidelity else [])
    sums = {n: 0.0 for n in names}
    counts = {n: 0 for n in names}
    skipped: Dict[str, str] = {}
    for val_data in dataloader:
        img_name = osp.splitext(osp.basename(val_data['lq_path'][0]))[0]
        model.feed_data(val_data)
        model.test()
        sr_img = tensor2img([model.output.detach().cpu()], min_max=value_range)
        metric_data = {'img': sr_img}
        if hasattr(model, 'gt'):
            metric_data['img2'] = tensor2img([model.gt.detach().cpu()], min_max=value_range)
        for name, opt_ in metrics_opt.items():
            try:
                value = calculate_metric(metric_data, opt_)
            except Exception as err:  # NIQE raises on small or flat images: skip, never kill training
                skipped[name] = f'{type(err).__name__}: {err}'
                continue
            sums[name] += float(value)
            counts[name] += 1
        if teacher_fidelity:
            noise = model.draw_noise(model.lq.shape[0], seed=0)  # the same noise as test() gives the student
            teacher_img = model.teacher_side.validation_image(val_data['lq_path'][0], model.lq, model.in_size, noise,
                                                              value_range)
            sums['psnr_teacher'] += float(calculate_metric({'img': sr_img, 'img2': teacher_img},
                                                           {'type': 'calculate_psnr', 'crop_border': 4}))
            counts['psnr_teacher'] += 1
        if save_img:
            _save_image(model.opt, sr_img, img_name, dataset_name, current_iter)
        for attr in ('gt', 'lq', 'output', 'gt_usm'):
            if hasattr(model, attr):
                delattr(model, attr)
    for name, reason in skipped.items():
        logger.warning(f'Validation metric {name} skipped on {len(dataloader) - counts[name]} image(s): {reason}')
    if not names:
        return
    model.metric_results = {n: (sums[n] / counts[n] if counts[n] else math.nan) for n in names}
    if not hasattr(model, 'best_metric_results'):
        model.best_metric_results = {}
    record = model.best_metric_results.setdefault(dataset_name, {})
    for name in names:  # basicsr's initialiser knows only val.metrics (and fails when there are none)
        better = (metrics_opt.get(name) or {}).get('better', 'higher')
        record.setdefault(name, dict(better=better, val=-math.inf if better == 'higher' else math.inf, iter=-1))
    for name, value in model.metric_results.items():
        if not math.isnan(value):
            model._update_best_metric_result(dataset_name, name, value, current_iter)
    model._log_validation_metric_values(current_iter, dataset_name, tb_logger)


def _save_image(opt: dict, img, img_name: str, dataset_name: str, current_iter) -> None:
    vis = opt['path']['visualization']
    if opt['is_train']:
        path = osp.join(vis, img_name, f'{img_name}_{current_iter}.png')
    else:
        suffix = opt['val'].get('suffix') or opt['name']
        path = osp.join(vis, dataset_name, f'{img_name}_{suffix}.png')
    imwrite(img, path)
