#!/usr/bin/env bash
# The documentation site: builds it into site/ with warnings as errors
# (`mkdocs build --strict`; mkdocs.yml, docs/about-the-docs.md).
#
#   bash scripts/docs.sh             build site/
#   bash scripts/docs.sh --serve     live preview on http://127.0.0.1:8000
#   bash scripts/docs.sh --figures   first rerun the examples whose output and figures
#                                    the gallery shows (docs/assets/gallery; minutes),
#                                    then build
#
# Reuses the project's .venv (created as scripts/test.sh does, with the dev extra;
# a no-op when it exists) and installs the pinned docs toolchain, docs/requirements.txt,
# into it through constraints.txt, which keeps torch at the release the project is
# tested against. The build imports paretomtl (the method tables come from its
# registries); the API reference reads the source without importing it.
# Material for MkDocs prints a banner about its successor on every build; it is no warning.
export NO_MKDOCS_2_WARNING=1
EXTRAS=dev
source "$(dirname "$0")/_venv.sh"

key="$(cat docs/requirements.txt constraints.txt | cksum | cut -d' ' -f1)"
stamp=".venv/.docs-installed-${key}"
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install -q -c constraints.txt -r docs/requirements.txt
    touch "$stamp"
fi

# Run one example, its stdout (with the command on the first line) into the gallery.
gallery=docs/assets/gallery
work=results/docs-gallery
capture() {
    local name="$1"
    shift
    echo "docs.sh --figures: python examples/${name}.py${*:+ $*}" >&2
    {
        echo "python examples/${name}.py${*:+ $*}"
        .venv/bin/python "examples/${name}.py" "$@"
    } > "${gallery}/${name}.txt.new"
    mv "${gallery}/${name}.txt.new" "${gallery}/${name}.txt"
}

case "${1:-}" in
    --serve)
        exec .venv/bin/mkdocs serve --strict
        ;;
    --figures)
        mkdir -p "$gallery" "$work"
        capture raw_arrays
        capture every_method
        capture trace_fronts
        capture ddp_training --spawn 2
        capture torchjd_interop
        capture tensorboard_logging --out "$work/tensorboard"
        capture lightning_training --out "$work/lightning"
        capture torch_training --out "$work/torch_training"
        cp "$work/torch_training/weights.png" "$gallery/torch_training_weights.png"
        capture gradnorm_synthetic --out "$work/gradnorm_synthetic"
        for f in two_tasks ten_tasks grid; do
            cp "$work/gradnorm_synthetic/$f.png" "$gallery/gradnorm_synthetic_$f.png"
        done
        capture preference_toy --out "$work/preference_toy"
        cp "$work/preference_toy/preference_toy.png" "$gallery/preference_toy_fronts.png"
        capture pe_ltr --out "$work/pe_ltr"
        cp "$work/pe_ltr/pe_ltr.png" "$gallery/pe_ltr_weights_tradeoff.png"
        capture two_objective_toy --out "$work/two_objective_toy"
        for f in balanced_x balanced_losses scaled_x scaled_losses; do
            cp "$work/two_objective_toy/two_objective_toy_$f.png" "$gallery/"
        done
        capture momentum_pcgrad --out "$work/momentum_pcgrad"
        cp "$work/momentum_pcgrad/final_metrics.png" "$gallery/momentum_pcgrad_final_metrics.png"
        capture multidigits --out "$work/multidigits" # about 15 minutes on 2 cores
        cp "$work/multidigits/accuracies.png" "$gallery/multidigits_accuracies.png"
        .venv/bin/python -m paretomtl demo --out "$work/demo" > /dev/null
        cp "$work/demo/front.png" "$gallery/demo_front.png"
        ;;
    "") ;;
    *)
        echo "usage: bash scripts/docs.sh [--serve | --figures]" >&2
        exit 2
        ;;
esac

exec .venv/bin/mkdocs build --strict --clean
