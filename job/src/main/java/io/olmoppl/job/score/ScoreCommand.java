package io.olmoppl.job.score;

import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.job.cli.Args;
import io.olmoppl.job.cli.Command;
import io.olmoppl.job.cli.UsageException;
import io.olmoppl.job.report.Analysis;
import io.olmoppl.job.report.Buckets;
import io.olmoppl.job.report.Progress;
import io.olmoppl.job.report.Report;
import io.olmoppl.job.report.ScoreSummary;
import io.olmoppl.job.report.Summary;
import io.olmoppl.job.report.SummaryJson;
import io.olmoppl.model.Precision;
import io.olmoppl.runtime.TorchEngine;
import io.olmoppl.scoring.DeviceSetting;
import io.olmoppl.scoring.PerplexityScorer;
import io.olmoppl.scoring.ScoringOptions;
import io.olmoppl.spark.Localizer;
import io.olmoppl.spark.OlmoPerplexity;
import io.olmoppl.spark.ScoreMetrics;
import java.io.IOException;
import java.io.PrintStream;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.storage.StorageLevel;

/**
 * {@code olmo-ppl score}: reads a dataset, appends per-document perplexity columns, writes it and a
 * summary.
 */
public final class ScoreCommand implements Command {
  public static final String HELP =
      String.join(
          "\n",
          "usage: olmo-ppl score --model DIR --input PATH --output PATH [options]",
          "",
          "  --model DIR            Hugging Face OLMo checkpoint (config.json, model.safetensors, tokenizer.json)",
          "  --input PATH           file or directory (a directory is read whole); any Hadoop file system URI",
          "  --input-glob PATTERN   instead of --input: a Hadoop glob ([ ] { } * ?); --input reads its path as named",
          "  --output PATH          output directory; must not exist (see --mode)",
          "  --mode error|overwrite an existing --output: refuse (default) or replace it",
          "  --previous PATH        an earlier output: carry over its rows whose text (or --id-column) and ppl_model",
          "                         are unchanged, score only the rest",
          "  --id-column NAME       row key for --previous (default: a hash of the text)",
          "  --on-malformed M       status|fail: malformed JSON lines get status malformed (default) or stop the run",
          "  --scan-weights B       true|false: refuse NaN/infinite weights before scoring (default true)",
          "  --input-format F       auto|parquet|json|csv|text|orc (default auto: by extension; json = JSON lines;",
          "                         csv = header row, multi-line values; text = one document per line)",
          "  --text-column NAME     column holding the documents (default text; also the column name for text input)",
          "  --output-format F      parquet|json|csv (default parquet; csv writes arrays as JSON strings)",
          "  --bos auto|eos|none    prefix token (default auto: config BOS if any, else EOS, as lm-eval)",
          "  --window L             tokens per forward pass (default: the model's max positions)",
          "  --stride S             new targets per window after the first, 1..L (default L: disjoint windows)",
          "  --allow-long-window    allow --window above the model's max positions",
          "  --token-logprobs       add ppl_token_logprobs (one log-prob per scored target)",
          "  --tying strict|config|checkpoint  a tied config with a differing stored output matrix (default strict)",
          "  --precision fp32|fp16  matmul precision (default fp32; fp16 is for GPUs)",
          "  --device auto|cpu|gpu  engine device (default auto)",
          "  --batch-tokens N       padded tokens per forward batch (default "
              + ScoringOptions.BATCH_TOKENS_DEFAULT
              + ")",
          "  --partitions N         repartition the input to N partitions (default: at least spark.default.parallelism)",
          "  --master URL           Spark master when not run by spark-submit (default local[*])",
          "  --properties FILE      read any of these options from a properties file (keys as above or spark.olmoppl.*)",
          Analysis.HELP,
          "  --output-columns LIST  scores-only output: only these key columns (names, globs: id,meta_*) plus",
          "                         the score columns; 'scores' = the --id-column plus the score columns",
          "",
          "Every option can also be given as --conf spark.olmoppl.<option>=VALUE to spark-submit.");

  public static final Set<String> OPTIONS =
      Stream.concat(
              Analysis.OPTIONS.stream(),
              Stream.of(
                  "model",
                  "input",
                  "input-glob",
                  "output",
                  "input-format",
                  "text-column",
                  "output-format",
                  "bos",
                  "window",
                  "stride",
                  "tying",
                  "precision",
                  "device",
                  "batch-tokens",
                  "partitions",
                  "master",
                  "properties",
                  "distribution",
                  "broadcast-max-bytes",
                  "mode",
                  "previous",
                  "id-column",
                  "on-malformed",
                  "scan-weights",
                  "output-columns"))
          .collect(Collectors.toUnmodifiableSet());
  public static final Set<String> FLAGS =
      Set.of("token-logprobs", "allow-long-window", "cutoffs-from-other-model");

  public ScoreCommand() {}

  @Override
  public String name() {
    return "score";
  }

  @Override
  public String oneLine() {
    return "--model DIR --input PATH --output PATH  score the text column of a dataset";
  }

  @Override
  public String help() {
    return HELP;
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws IOException {
    main(argv, out, err);
    return 0;
  }

  /** As {@link #main(String[], PrintStream, PrintStream)}, warnings on stderr. */
  public static ScoreSummary main(String[] argv, PrintStream out) throws IOException {
    return main(argv, out, System.err);
  }

  /**
   * Parses, starts Spark if needed, runs, stops the session it started; warnings and progress on
   * {@code err}.
   */
  public static ScoreSummary main(String[] argv, PrintStream out, PrintStream err)
      throws IOException {
    Args a = Args.parse("score", argv, 1, OPTIONS, FLAGS);
    Request req = Request.from(a);
    // A local checkpoint is validated before Spark starts: a bad model fails in a second, not after
    // a cluster start
    // (a Hadoop URI is validated once Spark is up, from a driver-local copy).
    var localModel = Localizer.localPath(req.model()); // null for a Hadoop URI
    if (localModel != null) {
      Checkpoint ckpt = Checkpoint.open(localModel, req.options().tying());
      try { // window and stride against the model's positions: a usage error, before Spark starts
        PerplexityScorer.resolveStride(
            PerplexityScorer.resolveWindow(ckpt.config(), req.options()), req.options());
      } catch (IllegalArgumentException e) {
        throw new UsageException(Request.asOption(e.getMessage()));
      }
    }
    boolean underSubmit = System.getProperty("spark.master") != null;
    boolean ours =
        SparkSession.getDefaultSession().isEmpty(); // stop only a session this call starts
    SparkSession.Builder b = SparkSession.builder().appName("olmo-ppl score");
    if (!underSubmit) {
      String master = a.get("master", "local[*]");
      b.master(master)
          .config("spark.ui.showConsoleProgress", "false") // olmo-ppl draws its own (Progress)
          // running tasks' counts reach the progress line with each heartbeat (Spark's default 10
          // s)
          .config("spark.executor.heartbeatInterval", Progress.HEARTBEAT);
      if (master.startsWith("local")) {
        b.config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1");
      }
    }
    SparkSession spark = b.getOrCreate();
    try {
      return run(spark, req, out, err);
    } finally {
      if (ours) {
        spark.stop(); // also under spark-submit: the driver exits when the job is done
      }
    }
  }

  /**
   * Runs a request on an existing session (tests share one), warnings and progress on
   * stderr. @return the summary
   */
  public static ScoreSummary run(SparkSession spark, Request req, PrintStream out)
      throws IOException {
    return run(spark, req, out, System.err);
  }

  /**
   * Runs a request on an existing session; warnings and progress go to {@code err}. @return the
   * summary
   */
  public static ScoreSummary run(SparkSession spark, Request req, PrintStream out, PrintStream err)
      throws IOException {
    long t0 = System.nanoTime();
    if (req.options().precision() == Precision.FP16
        && req.options().device() != DeviceSetting.GPU
        && TorchEngine.get().getGpuCount() == 0) {
      err.println(
          "olmo-ppl: warning: --precision fp16 on CPU: libtorch's fp16 matmul is about 200x slower than"
              + " fp32 there; use fp32 unless the executors have GPUs");
    }
    try (Output output = Output.open(spark, req)) { // every refusal about outputs, before any work
      return run(spark, req, output, out, err, t0);
    }
  }

  private static ScoreSummary run(
      SparkSession spark, Request req, Output output, PrintStream out, PrintStream err, long t0)
      throws IOException {
    FileSystem outFs = output.fs();
    Path outPath = output.rows(); // written beside --output, moved in place when complete
    Analysis an = req.analysis();
    Buckets.Cutoffs fixedCutoffs = an.prepare(spark.sparkContext().hadoopConfiguration());
    Dataset<Row> input = Formats.read(spark, req);
    OlmoPerplexity.textColumnIndex(input.schema(), req.textColumn(), "--text-column");
    an.validate(input.schema());
    InputCheck.require(input.schema(), req);
    if (req.outputColumns() != null) { // a bad list fails before any work
      req.outputColumns()
          .keys(input.columns(), req.run().idColumn(), req.options().tokenLogprobs());
    }
    spark.conf().set(OlmoPerplexity.SCAN_WEIGHTS, Boolean.toString(req.run().scanWeights()));
    OlmoPerplexity.Plan plan =
        OlmoPerplexity.plan(
            spark,
            input.schema(),
            req.model(),
            req.textColumn(),
            req.options(),
            req.distribution());
    if (fixedCutoffs != null) { // cut-offs of another model or setting: refused before scoring
      try {
        fixedCutoffs = fixedCutoffs.comparableWith(plan.spec().stamp(), an.cutoffsFromOtherModel());
      } catch (RuntimeException e) {
        plan.release();
        throw e;
      }
      String w = fixedCutoffs.warning(plan.spec().stamp());
      if (w != null) {
        err.println("olmo-ppl: warning: " + w);
      }
    }
    Malformed.check(input, req);
    for (String w : plan.checkpoint().config().warnings()) {
      err.println("olmo-ppl: warning: " + w);
    }
    for (String w : plan.checkpoint().tying().warnings()) {
      err.println("olmo-ppl: warning: " + w);
    }
    Dataset<Row> asRead = input; // counted for progress without the repartition's shuffle
    ScoreMetrics metrics = ScoreMetrics.register(spark.sparkContext());
    long tCount = System.nanoTime();
    Progress progress =
        Progress.start(
            spark, asRead, req.textColumn(), metrics, an.progress(), an.progressInterval(), err);
    input = Partitions.spread(input, asRead, progress, req.partitions(), spark, err);
    long tScore = System.nanoTime();
    Rerun rerun = Rerun.split(spark, input, plan, req);
    if (progress != null && req.run().previous() != null) {
      progress.carried(rerun.toScore(), req.textColumn()); // carried rows count as done
    }
    Dataset<Row> scored =
        Malformed.mark(rerun.combine(OlmoPerplexity.apply(rerun.toScore(), plan, metrics)))
            .persist(StorageLevel.MEMORY_AND_DISK());
    try {
      Buckets.Cutoffs cutoffs =
          fixedCutoffs != null
              ? fixedCutoffs
              : an.buckets() != null
                  ? Buckets.compute(scored, an.buckets(), plan.spec().stamp())
                  : null;
      Dataset<Row> labelled =
          cutoffs == null ? scored : scored.withColumn(Buckets.COLUMN, cutoffs.label());
      if (an.filters()) {
        Formats.write(written(labelled.filter(an.keep()), req), req, outPath.toString());
        if (an.rejected() != null) {
          Formats.write(
              written(labelled.filter(org.apache.spark.sql.functions.not(an.keep())), req),
              req,
              output.rejectedRows().toString());
        }
      } else {
        Formats.write(written(labelled, req), req, outPath.toString());
      }
      if (progress != null) {
        progress.close();
      }
      long tSummary = System.nanoTime();
      // the counts and the distribution's range and percentiles in one Spark job
      Row totals = Summary.totals(scored, req.textColumn(), Analysis.distributionAggregates());
      ScoreSummary.Corpus corpus =
          Summary.build(
              scored, totals, plan, req.describe(), metrics, (System.nanoTime() - t0) / 1e9);
      ScoreSummary.Previous previous = rerun.describe(corpus.documents());
      ScoreSummary.Findings findings =
          an.summarize(
              labelled,
              totals,
              Summary.MORE_FROM,
              req.textColumn(),
              req.run().idColumn(),
              cutoffs,
              corpus);
      Summary.Timings timings = Summary.timings(corpus, t0, tCount, tScore, tSummary);
      ScoreSummary summary =
          new ScoreSummary(corpus, previous, findings, timings.timings(), timings.throughput());
      SummaryJson.write(outFs, new Path(outPath, "_summary.json"), summary);
      Report.write(outFs, outPath, summary);
      Output.markComplete(outFs, outPath); // last: an output without the marker is incomplete
      output.commit(); // swap the complete output in; an old one is deleted only now
      Summary.print(summary, out);
      return summary;
    } finally {
      if (progress != null) {
        progress.close();
      }
      scored.unpersist();
      plan.release();
    }
  }

  /** The columns written: all, or those of {@code --output-columns}. */
  private static Dataset<Row> written(Dataset<Row> rows, Request req) {
    return req.outputColumns() == null ? rows : req.outputColumns().select(rows, req);
  }
}
