#!/usr/bin/env bash
# Install the Debian packages the test suite drives for real: Dovecot (IMAP), Chromium (screenshots),
# LibreOffice Calc (prints the template to PDF) with fonts metric-compatible with Times New Roman and
# Calibri (so column widths and line wraps match Excel), and poppler (reads the PDF, renders doc images).
set -euo pipefail
needed=()
command -v dovecot >/dev/null 2>&1 || needed+=(dovecot-imapd)
command -v chromium >/dev/null 2>&1 || needed+=(chromium)
command -v soffice >/dev/null 2>&1 || needed+=(libreoffice-calc libreoffice-writer)
command -v pdftoppm >/dev/null 2>&1 || needed+=(poppler-utils)
dpkg -s fonts-liberation2 >/dev/null 2>&1 || needed+=(fonts-liberation2)
dpkg -s fonts-crosextra-carlito >/dev/null 2>&1 || needed+=(fonts-crosextra-carlito)
if ((${#needed[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "need root to install: ${needed[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${needed[@]}"
fi
