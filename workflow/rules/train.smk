# Train: StyleGAN with progressive growing, launched by torchrun (one process per
# GPU, or one CPU process in the demo), on one node or, with train.resources.nodes > 1,
# one torchrun per node of one SLURM job. Checkpoints live outside the declared
# outputs so a failed, preempted or requeued job resumes instead of restarting.
# The manifest is ancient() and the model protected(): neither a code edit nor a
# repacked dataset retrains a finished model (delete generator.pt to retrain; run
# with --rerun-triggers mtime so params/code changes do not trigger either). With
# train.retrain_on_takedown the manifest is a plain input and the model unprotected,
# so a repack (a takedown) retrains it from scratch (the loop clears a run directory
# whose checkpoint trained on other data); the report marks a model left stale.
# On SIGTERM/SIGUSR1 every rank checkpoints at the end of the same step and exits 75;
# the profile's retries (or a requeue) start it again and it resumes from
# results/train/run. USR1 is ignored by the shells and torchrun (torchrun has no
# handler and would die of it); the training processes install their own.


RETRAIN_ON_TAKEDOWN = CONFIG.train.retrain_on_takedown


rule train:
    input:
        # a copy: ancient() flags the file it gets, and rules.pack.output's are shared by every rule that names them
        str(rules.pack.output.manifest) if RETRAIN_ON_TAKEDOWN else ancient(str(rules.pack.output.manifest)),
    output:
        generator=f"{RESULTS}/train/generator.pt" if RETRAIN_ON_TAKEDOWN else protected(f"{RESULTS}/train/generator.pt"),
    log:
        f"{LOGS}/train.log",
    benchmark:
        f"{RESULTS}/benchmarks/train.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        settings=lambda wc: settings("train"),
        run=f"{RESULTS}/train/run",
        nproc=CONFIG.train.resources.processes,
        launch=train_launcher(),
    resources:
        **CONFIG.train.resources.slurm(),
    message:
        "Training StyleGAN ({params.nproc} process(es))"
    shell:
        "trap '' USR1; {params.launch} train --settings {params.settings:q} --manifest {input} "
        "--run-dir {params.run} --out {output} > {log} 2>&1"


rule sample_grid:
    input:
        generator(),
    output:
        grid=report(f"{RESULTS}/train/grid.png", caption="../report/sample_grid.rst", category="Training",
                    subcategory="Samples"),
    log:
        f"{LOGS}/sample_grid.log",
    conda:
        "../../envs/torch.yaml"
    params:
        seed=config["seed"],
        psi=config["train"]["network"]["truncation_psi"],
        cutoff=config["train"]["network"]["truncation_cutoff"],
    message:
        "Drawing a sample grid from the generator"
    shell:
        "python -m stylegan.cli generate --checkpoint {input} --grid {output} --seed {params.seed} "
        "--psi {params.psi} --cutoff {params.cutoff} > {log} 2>&1"
