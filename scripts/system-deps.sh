#!/usr/bin/env bash
# Install the Debian packages elman's demo and tests need, where missing.
#   fortunes                                  built-in text data (text:fortunes)
#   gcc-arm-none-eabi libnewlib-arm-none-eabi Cortex-M builds (elman mcu)
#   gcc-riscv64-unknown-elf                   RISC-V RV32IMC builds (elman mcu --cpu rv32imc)
#   qemu-system-arm                           Cortex-M55 (MVE) runs, and the whole-image smoke test
#   chromium                                  renders report.html in a test (optional)
#   cmake                                     builds the CMake and Zephyr packages (optional)
#   gcc-avr avr-libc simavr libsimavr-dev     the Arduino Uno (ATmega328P) build and emulator (optional)
#   arduino-core-avr arduino-builder          builds the Arduino package's sketch for the Uno (optional)
#   postgresql                                the elman search cluster test's server (optional)
#   libstdc++-arm-none-eabi-newlib            C++ headers for TFLite Micro in bench/peers (--with-peers)
# As root this runs apt-get; otherwise it prints the exact line to run and fails.
set -euo pipefail

required=()
[ -f /usr/share/games/fortunes/fortunes ] || required+=(fortunes)
command -v arm-none-eabi-gcc >/dev/null 2>&1 || required+=(gcc-arm-none-eabi)
[ -d /usr/lib/arm-none-eabi/newlib ] || [ -f /usr/lib/arm-none-eabi/lib/libc.a ] || required+=(libnewlib-arm-none-eabi)
command -v riscv64-unknown-elf-gcc >/dev/null 2>&1 || required+=(gcc-riscv64-unknown-elf)
command -v qemu-system-arm >/dev/null 2>&1 || required+=(qemu-system-arm)
optional=()
if [ "${1:-}" = "--with-optional" ]; then
  command -v chromium >/dev/null 2>&1 || optional+=(chromium)
  command -v cmake >/dev/null 2>&1 || optional+=(cmake)
  command -v avr-gcc >/dev/null 2>&1 || optional+=(gcc-avr)
  [ -f /usr/lib/avr/include/avr/io.h ] || optional+=(avr-libc)
  command -v simavr >/dev/null 2>&1 || optional+=(simavr)
  [ -f /usr/include/simavr/sim_avr.h ] || optional+=(libsimavr-dev)
  [ -d /usr/share/arduino/hardware/arduino/avr ] || optional+=(arduino-core-avr)
  command -v arduino-builder >/dev/null 2>&1 || optional+=(arduino-builder)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || optional+=(postgresql)
fi
if [ "${1:-}" = "--with-peers" ]; then
  [ -d /usr/lib/arm-none-eabi/newlib ] && ls /usr/include/newlib/c++/*/new >/dev/null 2>&1 \
    || optional+=(libstdc++-arm-none-eabi-newlib)
fi
missing=("${required[@]}" "${optional[@]}")
[ ${#missing[@]} -eq 0 ] && exit 0

line="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo apt-get update -q && sudo $line
    exit 0
  fi
  echo "elman needs system packages that are missing: ${missing[*]}" >&2
  echo "run this as root, then try again:" >&2
  echo "  sudo apt-get update && sudo $line" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
$line >/dev/null
