"""Stage policy: what one SDAKD stage trains and which loss terms it uses (docs/method.md, section 3).

The stage number only chooses defaults; every choice can be overridden in the option file and the
resolved policy is logged at start-up, so what a stage does is always visible.
"""
from dataclasses import dataclass
from enum import Enum
from typing import Tuple


class Role(Enum):
    """A discriminator's role, and the option keys, log tags and file labels that go with it."""
    STUDENT = 'student'
    TEACHER = 'teacher'

    @property
    def tag(self) -> str:  # log keys: l_ds_real, out_dt_fake, l_g_gan_ds, ...
        return 'ds' if self is Role.STUDENT else 'dt'

    @property
    def label(self) -> str:  # net_<label>.pth, path.strict_load_<label>, path.param_key_<label>
        return 'd' if self is Role.STUDENT else 'd_teacher'

    @property
    def net_key(self) -> str:
        return f'network_{self.label}'

    @property
    def loss_key(self) -> str:
        return 'gan_opt' if self is Role.STUDENT else 'gan_teacher_opt'

    @property
    def optim_key(self) -> str:
        return f'optim_{self.label}'

    @property
    def description(self) -> str:
        return ('the student discriminator D_S (e.g. UNetDiscriminatorSN with num_feat = 64 x width)'
                if self is Role.STUDENT else 'the teacher discriminator D_T (UNetDiscriminatorSN, num_feat 64)')


DISCRIMINATORS = tuple(r.value for r in Role)
GENERATOR_KEY, ADAPTERS_KEY = 'network_g', 'network_adapters'
NETWORK_KEYS = (GENERATOR_KEY, *(r.net_key for r in Role), ADAPTERS_KEY)  # every network block SDAKDModel builds
# which discriminators give the student generator an adversarial term, by stage
DEFAULT_ADVERSARIAL = {0: (), 1: (), 2: ('student', ), 3: ('student', 'teacher')}


@dataclass(frozen=True)
class StagePolicy:
    stage: int
    adversarial: Tuple[str, ...]  # discriminators whose adversarial term the student generator gets
    train_d_student: bool
    train_d_teacher: bool
    fmd: bool  # feature-map distillation through the adapters
    kd: bool  # output distillation L1(G_S(x), G_T(x))
    texture: Tuple[str, ...] = ()  # the texture terms' log names (hf, patch, d_feat, ldl, blend)
    teacher_output: bool = False  # a texture term compares with the teacher's output

    @property
    def warmup_d_teacher(self) -> bool:
        """Stage 0: D_T alone learns real GT vs the frozen teacher's outputs; the student does not train."""
        return self.stage == 0

    @property
    def teacher_forward(self) -> bool:
        """The frozen teacher generator runs in training only when a term needs its features or output."""
        return self.fmd or self.kd or self.teacher_output or self.warmup_d_teacher

    @property
    def needs_teacher_output(self) -> bool:
        """The teacher's full output (not only its features up to the last tap) is used by a term."""
        return self.kd or self.teacher_output

    @property
    def adversary_roles(self) -> Tuple[Role, ...]:
        """Discriminators the run uses: those in the G loss, and D_T alone in stage 0."""
        if self.warmup_d_teacher:
            return (Role.TEACHER, )
        return tuple(Role(d) for d in self.adversarial)

    def trains(self, role: Role) -> bool:
        return self.train_d_student if role is Role.STUDENT else self.train_d_teacher

    @property
    def trained_networks(self) -> Tuple[str, ...]:
        if self.warmup_d_teacher:
            return ('net_d_teacher', )
        nets = ['net_g'] + (['net_adapters'] if self.fmd else [])
        nets += ['net_d'] if self.train_d_student else []
        nets += ['net_d_teacher'] if self.train_d_teacher else []
        return tuple(nets)

    def describe(self) -> str:
        if self.warmup_d_teacher:
            return ('SDAKD stage 0 (teacher-discriminator warm-up): trains net_d_teacher on real GT vs the frozen '
                    'teacher generator\'s outputs; the student is not trained')
        terms = ['L_sup'] + (['w_fmd*L_fmd'] if self.fmd else []) + (['w_kd*L_kd'] if self.kd else [])
        terms += [f'L_{name}' for name in self.texture]
        terms += [f'w_{d[0]}*L_adv(D_{d[0].upper()})' for d in self.adversarial]
        return (f'SDAKD stage {self.stage}: trains {", ".join(self.trained_networks)}; '
                f'G_S loss = {" + ".join(terms)}; teacher forward: {"yes" if self.teacher_forward else "no"}')


def resolve_policy(stage: int, adversarial, train_d_teacher: bool, fmd: bool, kd: bool,
                   texture: Tuple[str, ...] = (), teacher_output: bool = False) -> StagePolicy:
    if stage not in DEFAULT_ADVERSARIAL:
        raise ValueError(f'sdakd.stage must be 0 (teacher-D warm-up), 1, 2 or 3, got {stage!r}')
    if adversarial is None:
        adversarial = DEFAULT_ADVERSARIAL[stage]
    if isinstance(adversarial, str):
        adversarial = [adversarial]
    unknown = [d for d in adversarial if d not in DISCRIMINATORS]
    if unknown:
        raise ValueError(f'sdakd.adversarial: unknown discriminator(s) {unknown}; use a subset of {DISCRIMINATORS}')
    adversarial = tuple(d for d in DISCRIMINATORS if d in adversarial)
    if stage == 0:
        if adversarial or fmd or kd or texture:
            raise ValueError('sdakd.stage 0 (teacher-D warm-up) trains only the teacher discriminator: remove '
                             'sdakd.adversarial, train.fmd_opt, train.kd_opt and the texture terms '
                             f'({", ".join(f"train.{t}_opt" for t in texture) or "none set"})')
        return StagePolicy(stage=0, adversarial=(), train_d_student=False, train_d_teacher=True, fmd=False, kd=False)
    return StagePolicy(
        stage=stage,
        adversarial=adversarial,
        train_d_student='student' in adversarial,
        train_d_teacher='teacher' in adversarial and bool(train_d_teacher),
        fmd=bool(fmd),
        kd=bool(kd),
        texture=tuple(texture),
        teacher_output=bool(teacher_output))
