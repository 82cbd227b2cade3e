"""Student initialisation from the teacher by structured channel selection (RRDBNet)."""
import pytest
import torch

from basicsr.archs.rrdbnet_arch import RRDBNet

from sdakd_basicsr.distill.channel_init import init_student_from_teacher, select_channels


def psnr(a, b):
    return (10 * torch.log10(1 / torch.mean((a.clamp(0, 1) - b.clamp(0, 1))**2))).item()


def nets(feat_s, grow_s, seed=0):
    torch.manual_seed(seed)
    teacher = RRDBNet(3, 3, num_feat=16, num_block=2, num_grow_ch=8).eval()
    with torch.no_grad():  # a teacher whose output is an image, not noise: start from identity-like weights
        teacher.conv_last.weight.mul_(0.1)
    student = RRDBNet(3, 3, num_feat=feat_s, num_block=2, num_grow_ch=grow_s).eval()
    return teacher, student


def test_full_width_reproduces_the_teacher_exactly():
    teacher, student = nets(16, 8)
    x = torch.rand(2, 3, 12, 12)
    keep = init_student_from_teacher(teacher, student, x)
    assert torch.equal(keep['trunk'], torch.arange(16))
    with torch.no_grad():
        assert torch.equal(student(x), teacher(x))


def test_quarter_width_is_far_closer_to_the_teacher_than_a_random_student():
    teacher, student = nets(4, 2)
    torch.manual_seed(1)
    train, held_out = torch.rand(4, 3, 16, 16), torch.rand(2, 3, 16, 16)
    random_student = RRDBNet(3, 3, num_feat=4, num_block=2, num_grow_ch=2).eval()
    init_student_from_teacher(teacher, student, train)
    with torch.no_grad():
        target = teacher(held_out)
        selected, random = psnr(student(held_out), target), psnr(random_student(held_out), target)
    assert selected > random + 10, (selected, random)


def test_channels_are_ranked_by_activation_not_position():
    teacher, student = nets(4, 2)
    with torch.no_grad():  # make trunk channels 9..12 of conv_first by far the most active
        teacher.conv_first.bias[9:13] += 50
    keep = select_channels(teacher, student, torch.rand(2, 3, 8, 8))
    assert keep['trunk'].tolist() == [9, 10, 11, 12]
    assert len(keep['body.0.rdb1.g1']) == 2 and len(keep['up1']) == 4


def test_depth_mismatch_is_rejected():
    teacher, _ = nets(4, 2)
    with pytest.raises(ValueError, match='same depth'):
        student = RRDBNet(3, 3, num_feat=4, num_block=1, num_grow_ch=2)
        init_student_from_teacher(teacher, student, torch.rand(1, 3, 8, 8))
