# Sourced by the scripts that run SAELens: makes (once) and names the venv with sae-lens (and
# torch, ~1 GB) under $SAELENS_VENV (default ~/.cache/synthsae/saelens-venv); sets $venv.
SAELENS_VERSION="${SAELENS_VERSION:-6.54.12}"
venv="${SAELENS_VENV:-$HOME/.cache/synthsae/saelens-venv}"
if ! "$venv/bin/python" -c "import sae_lens, sys; sys.exit(sae_lens.__version__ != '$SAELENS_VERSION')" 2>/dev/null; then
  echo "installing sae-lens==$SAELENS_VERSION into $venv (once; torch is large)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "sae-lens==$SAELENS_VERSION"
fi
# tqdm's progress bars (SAELens's orthogonalisation, training) would swamp the log.
export TQDM_DISABLE=1
