package io.olmoppl.job;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.to_json;

import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.job.Args.UsageException;
import io.olmoppl.job.Main.JobException;
import io.olmoppl.model.Precision;
import io.olmoppl.runtime.TorchEngine;
import io.olmoppl.scoring.Bos;
import io.olmoppl.scoring.DeviceSetting;
import io.olmoppl.scoring.ScoringOptions;
import io.olmoppl.spark.Localizer;
import io.olmoppl.spark.OlmoPerplexity;
import io.olmoppl.spark.ScoreMetrics;
import java.io.IOException;
import java.io.PrintStream;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.DataFrameReader;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.MapType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.storage.StorageLevel;

/**
 * {@code olmo-ppl score}: reads a dataset, appends per-document perplexity columns, writes it and a
 * summary.
 */
public final class ScoreCommand {
  static final String HELP =
      String.join(
          "\n",
          "usage: olmo-ppl score --model DIR --input PATH --output PATH [options]",
          "",
          "  --model DIR            Hugging Face OLMo checkpoint (config.json, model.safetensors, tokenizer.json)",
          "  --input PATH           file or directory (a directory is read whole); any Hadoop file system URI",
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
          "",
          "Every option can also be given as --conf spark.olmoppl.<option>=VALUE to spark-submit.");

  static final Set<String> OPTIONS =
      Stream.concat(
              Analysis.OPTIONS.stream(),
              Stream.of(
                  "model",
                  "input",
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
                  "scan-weights"))
          .collect(Collectors.toUnmodifiableSet());
  static final Set<String> FLAGS = Set.of("token-logprobs", "allow-long-window");

  private ScoreCommand() {}

  /** As {@link #main(String[], PrintStream, PrintStream)}, warnings on stderr. */
  public static Map<String, Object> main(String[] argv, PrintStream out) throws IOException {
    return main(argv, out, System.err);
  }

  /**
   * Parses, starts Spark if needed, runs, stops the session it started; warnings and progress on
   * {@code err}.
   */
  public static Map<String, Object> main(String[] argv, PrintStream out, PrintStream err)
      throws IOException {
    Args a = Args.parse("score", argv, 1, OPTIONS, FLAGS);
    Request req = Request.from(a);
    // A local checkpoint is validated before Spark starts: a bad model fails in a second, not after
    // a cluster start
    // (a Hadoop URI is validated once Spark is up, from a driver-local copy).
    var localModel = Localizer.localPath(req.model); // null for a Hadoop URI
    if (localModel != null) {
      Checkpoint.open(localModel, req.options.tying());
    }
    boolean underSubmit = System.getProperty("spark.master") != null;
    boolean ours =
        SparkSession.getDefaultSession().isEmpty(); // stop only a session this call starts
    SparkSession.Builder b = SparkSession.builder().appName("olmo-ppl score");
    if (!underSubmit) {
      String master = a.get("master", "local[*]");
      b.master(master)
          .config("spark.ui.showConsoleProgress", "false"); // olmo-ppl draws its own (Progress)
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

  /** The library names a setting first ("tying must be ..."); the command line calls it --tying. */
  private static String asOption(String libraryMessage) {
    return libraryMessage.startsWith("--") ? libraryMessage : "--" + libraryMessage;
  }

  /** The parsed request. */
  record Request(
      String model,
      String input,
      String output,
      String inputFormat,
      String textColumn,
      String outputFormat,
      Integer partitions,
      OlmoPerplexity.Distribution distribution,
      ScoringOptions options,
      RunOptions run,
      Analysis analysis) {
    static Request from(Args a) {
      String inFmt = a.get("input-format", "auto").toLowerCase(Locale.ROOT);
      if (!List.of("auto", "parquet", "json", "csv", "text", "orc").contains(inFmt)) {
        throw new UsageException(
            "--input-format must be auto, parquet, json, csv, text or orc, not '" + inFmt + "'");
      }
      String outFmt = a.get("output-format", "parquet").toLowerCase(Locale.ROOT);
      if (!List.of("parquet", "json", "csv").contains(outFmt)) {
        throw new UsageException(
            "--output-format must be parquet, json or csv, not '" + outFmt + "'");
      }
      OlmoPerplexity.Distribution dist;
      try {
        String max = a.get("broadcast-max-bytes");
        dist =
            new OlmoPerplexity.Distribution(
                a.get("distribution", "auto").toLowerCase(Locale.ROOT),
                max == null
                    ? OlmoPerplexity.BROADCAST_MAX_BYTES_DEFAULT
                    : Long.parseLong(max.trim()));
      } catch (NumberFormatException e) {
        throw new UsageException(
            "--broadcast-max-bytes must be a number of bytes, not '"
                + a.get("broadcast-max-bytes")
                + "'");
      } catch (IllegalArgumentException e) {
        throw new UsageException(asOption(e.getMessage()));
      }
      Integer partitions = a.integer("partitions");
      if (partitions != null && partitions < 1) {
        throw new UsageException("--partitions must be at least 1, not " + partitions);
      }
      ScoringOptions o;
      try {
        o =
            new ScoringOptions(
                Bos.parse(a.get("bos", "auto")),
                a.integer("window"),
                a.integer("stride"),
                a.integer("batch-tokens", ScoringOptions.BATCH_TOKENS_DEFAULT),
                a.flag("token-logprobs"),
                a.flag("allow-long-window"),
                TyingRule.parse(a.get("tying", "strict")),
                Precision.parse(a.get("precision", "fp32")),
                DeviceSetting.parse(a.get("device", "auto")));
      } catch (IllegalArgumentException e) {
        throw new UsageException(asOption(e.getMessage()));
      }
      return new Request(
          a.require("model"),
          a.require("input"),
          a.require("output"),
          inFmt,
          a.get("text-column", "text"),
          outFmt,
          partitions,
          dist,
          o,
          RunOptions.from(a),
          Analysis.from(a));
    }
  }

  /**
   * Runs a request on an existing session (tests share one), warnings and progress on
   * stderr. @return the summary
   */
  static Map<String, Object> run(SparkSession spark, Request req, PrintStream out)
      throws IOException {
    return run(spark, req, out, System.err);
  }

  /**
   * Runs a request on an existing session; warnings and progress go to {@code err}. @return the
   * summary
   */
  static Map<String, Object> run(SparkSession spark, Request req, PrintStream out, PrintStream err)
      throws IOException {
    long t0 = System.nanoTime();
    if (req.options().precision() == Precision.FP16
        && req.options().device() != DeviceSetting.GPU
        && TorchEngine.get().getGpuCount() == 0) {
      err.println(
          "olmo-ppl: warning: --precision fp16 on CPU: libtorch's fp16 matmul is about 200x slower than"
              + " fp32 there; use fp32 unless the executors have GPUs");
    }
    Path outPath = new Path(req.output());
    FileSystem outFs = outPath.getFileSystem(spark.sparkContext().hadoopConfiguration());
    Output.prepare(spark, req);
    Analysis an = req.analysis();
    Buckets.Cutoffs fixedCutoffs = an.prepare(spark.sparkContext().hadoopConfiguration());
    Dataset<Row> input = read(spark, req);
    OlmoPerplexity.textColumnIndex(input.schema(), req.textColumn(), "--text-column");
    an.validate(input.schema());
    spark.conf().set(OlmoPerplexity.SCAN_WEIGHTS, Boolean.toString(req.run().scanWeights()));
    OlmoPerplexity.Plan plan =
        OlmoPerplexity.plan(
            spark,
            input.schema(),
            req.model(),
            req.textColumn(),
            req.options(),
            req.distribution());
    Malformed.check(input, req);
    for (String w : plan.checkpoint().config().warnings()) {
      err.println("olmo-ppl: warning: " + w);
    }
    for (String w : plan.checkpoint().tying().warnings()) {
      err.println("olmo-ppl: warning: " + w);
    }
    Dataset<Row> asRead = input; // counted for progress without the repartition's shuffle
    int target =
        req.partitions() != null ? req.partitions() : spark.sparkContext().defaultParallelism();
    if (req.partitions() != null || input.rdd().getNumPartitions() < target) {
      input = input.repartition(target);
    }
    ScoreMetrics metrics = ScoreMetrics.register(spark.sparkContext());
    long tCount = System.nanoTime();
    Progress progress =
        Progress.start(
            spark, asRead, req.textColumn(), metrics, an.progress(), an.progressInterval(), err);
    long tScore = System.nanoTime();
    Rerun rerun = Rerun.split(spark, input, plan, req);
    Dataset<Row> scored =
        Malformed.mark(rerun.combine(OlmoPerplexity.apply(rerun.toScore(), plan, metrics)))
            .persist(StorageLevel.MEMORY_AND_DISK());
    try {
      Output.clearForOverwrite(outFs, outPath, req);
      Buckets.Cutoffs cutoffs =
          fixedCutoffs != null
              ? fixedCutoffs
              : an.buckets() != null ? Buckets.compute(scored, an.buckets()) : null;
      Dataset<Row> labelled =
          cutoffs == null ? scored : scored.withColumn(Buckets.COLUMN, cutoffs.label());
      if (an.filters()) {
        write(labelled.filter(an.keep()), req, req.output());
        if (an.rejected() != null) {
          write(labelled.filter(org.apache.spark.sql.functions.not(an.keep())), req, an.rejected());
        }
      } else {
        write(labelled, req, req.output());
      }
      if (progress != null) {
        progress.close();
      }
      long tSummary = System.nanoTime();
      Map<String, Object> summary =
          Summary.build(scored, plan, req, metrics, (System.nanoTime() - t0) / 1e9);
      rerun.describe(summary);
      summary.putAll(an.summarize(labelled, req.textColumn(), cutoffs, summary));
      summary.putAll(Analysis.timings(summary, t0, tCount, tScore, tSummary));
      Summary.write(outFs, new Path(outPath, "_summary.json"), summary);
      Report.write(outFs, outPath, summary);
      Output.markComplete(outFs, outPath); // last: an output without the marker is incomplete
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

  private static Dataset<Row> read(SparkSession spark, Request req) throws IOException {
    Path in = new Path(req.input());
    FileSystem fs = in.getFileSystem(spark.sparkContext().hadoopConfiguration());
    if (!fs.exists(in)) {
      throw new JobException(
          "--input " + req.input() + " does not exist. Pass a file or a directory of files.");
    }
    String fmt = req.inputFormat().equals("auto") ? detect(fs, in) : req.inputFormat();
    DataFrameReader r = spark.read();
    Dataset<Row> df =
        switch (fmt) {
          case "parquet" -> r.parquet(req.input());
          case "orc" -> r.orc(req.input());
          case "json" -> r.option("columnNameOfCorruptRecord", Malformed.COLUMN).json(req.input());
          case "csv" ->
              r.option("header", "true")
                  .option("multiLine", "true")
                  .option("escape", "\"")
                  .csv(req.input());
          case "text" -> r.text(req.input()).withColumnRenamed("value", req.textColumn());
          default -> throw new IllegalStateException(fmt);
        };
    return df;
  }

  /**
   * @return the format by file extension: of the file, or of every data file in a directory (which
   *     must agree)
   */
  static String detect(FileSystem fs, Path in) throws IOException {
    if (!fs.getFileStatus(in).isDirectory()) {
      return detect(in, in.getName());
    }
    Map<String, List<String>> byFormat = new java.util.TreeMap<>();
    for (FileStatus s : fs.listStatus(in)) {
      String n = s.getPath().getName();
      if (s.isFile() && !n.startsWith("_") && !n.startsWith(".")) {
        byFormat.computeIfAbsent(detect(in, n), k -> new java.util.ArrayList<>()).add(n);
      }
    }
    if (byFormat.isEmpty()) {
      throw new JobException("--input " + in + " is a directory with no data files.");
    }
    if (byFormat.size() > 1) {
      StringBuilder b = new StringBuilder();
      byFormat.forEach(
          (f, names) ->
              b.append(b.length() == 0 ? "" : "; ")
                  .append(f)
                  .append(": ")
                  .append(
                      names.size() <= 5
                          ? names
                          : names.subList(0, 5) + " and " + (names.size() - 5) + " more"));
      throw new JobException(
          "--input "
              + in
              + " mixes files of several formats ("
              + b
              + "). A directory is read"
              + " whole in one format; put each format in its own directory and score them separately.");
    }
    return byFormat.keySet().iterator().next();
  }

  private static String detect(Path in, String name) {
    String n = name.toLowerCase(Locale.ROOT);
    for (String suffix : List.of(".gz", ".bz2", ".zst", ".snappy", ".lz4", ".deflate")) {
      if (n.endsWith(suffix) && !n.endsWith(".parquet" + suffix)) {
        n = n.substring(0, n.length() - suffix.length());
      }
    }
    if (n.endsWith(".parquet") || n.contains(".parquet")) {
      return "parquet";
    }
    if (n.endsWith(".jsonl") || n.endsWith(".json") || n.endsWith(".ndjson")) {
      return "json";
    }
    if (n.endsWith(".csv")) {
      return "csv";
    }
    if (n.endsWith(".txt") || n.endsWith(".text")) {
      return "text";
    }
    if (n.endsWith(".orc")) {
      return "orc";
    }
    throw new UsageException(
        "cannot tell the format of --input "
            + in
            + " from the file name '"
            + name
            + "'. Pass --input-format parquet|json|csv|text|orc (a directory must hold files of one format).");
  }

  static void write(Dataset<Row> scored, Request req, String path) {
    switch (req.outputFormat()) {
      case "json" ->
          Output.writer(scored)
              .option("ignoreNullFields", "false")
              .option("compression", "none")
              .json(path);
      case "csv" -> {
        Dataset<Row> flat = scored;
        for (StructField f : scored.schema().fields()) {
          if (f.dataType() instanceof ArrayType
              || f.dataType() instanceof StructType
              || f.dataType() instanceof MapType) {
            flat = flat.withColumn(f.name(), to_json(col(f.name())));
          }
        }
        Output.writer(flat).option("header", "true").option("escape", "\"").csv(path);
      }
      default -> Output.writer(scored).parquet(path);
    }
  }
}
