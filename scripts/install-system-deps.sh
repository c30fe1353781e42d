#!/usr/bin/env bash
# Install the Debian packages the test suite drives for real: Dovecot (IMAP), Chromium (screenshots) and
# LibreOffice (converts the Excel rollup to PDF to count printed pages).
set -euo pipefail
needed=()
command -v dovecot >/dev/null 2>&1 || needed+=(dovecot-imapd)
command -v chromium >/dev/null 2>&1 || needed+=(chromium)
command -v soffice >/dev/null 2>&1 || needed+=(libreoffice-calc libreoffice-writer)
if ((${#needed[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "need root to install: ${needed[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${needed[@]}"
fi
