package io.olmoppl.job.score;

import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.job.cli.Args;
import io.olmoppl.job.cli.UsageException;
import io.olmoppl.job.report.Analysis;
import io.olmoppl.job.report.Summary;
import io.olmoppl.model.Precision;
import io.olmoppl.scoring.Bos;
import io.olmoppl.scoring.DeviceSetting;
import io.olmoppl.scoring.ScoringOptions;
import io.olmoppl.spark.OlmoPerplexity;
import java.util.List;
import java.util.Locale;

/**
 * A parsed {@code score} command line: what to read and write, the scoring options, the run options
 * and the analysis. Unset scoring options take {@link ScoringOptions#defaults()}.
 *
 * @param input the path {@code --input} names, or the pattern of {@code --input-glob}
 * @param inputGlob true when {@code input} is a pattern ({@code --input-glob})
 * @param outputColumns {@code --output-columns} (null: every input column is written)
 */
public record Request(
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
    Analysis analysis,
    boolean inputGlob,
    OutputColumns outputColumns) {
  public static Request from(Args a) {
    String glob = a.get("input-glob");
    if (glob == null && a.get("input") == null) {
      throw new UsageException("'score' needs --input PATH (or --input-glob PATTERN)");
    }
    if (glob != null && a.get("input") != null) {
      throw new UsageException(
          "pass either --input (a path, read as named) or --input-glob (a pattern), not both");
    }
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
    ScoringOptions d = ScoringOptions.defaults();
    ScoringOptions o;
    try {
      o =
          new ScoringOptions(
              a.get("bos") == null ? d.bos() : Bos.parse(a.get("bos")),
              a.integer("window"),
              a.integer("stride"),
              a.integer("batch-tokens", d.batchTokens()),
              a.flag("token-logprobs"),
              a.flag("allow-long-window"),
              a.get("tying") == null ? d.tying() : TyingRule.parse(a.get("tying")),
              a.get("precision") == null ? d.precision() : Precision.parse(a.get("precision")),
              a.get("device") == null ? d.device() : DeviceSetting.parse(a.get("device")));
    } catch (IllegalArgumentException e) {
      throw new UsageException(asOption(e.getMessage()));
    }
    return new Request(
        a.require("model"),
        glob != null ? glob : a.require("input"),
        a.require("output"),
        inFmt,
        a.get("text-column", "text"),
        outFmt,
        partitions,
        dist,
        o,
        RunOptions.from(a),
        Analysis.from(a),
        glob != null,
        OutputColumns.parse(a.get("output-columns")));
  }

  /** What the summary says the run read and wrote. */
  public Summary.Run describe() {
    return new Summary.Run(input, output, inputFormat, outputFormat, textColumn, options);
  }

  /** The library names a setting first ("tying must be ..."); the command line calls it --tying. */
  static String asOption(String libraryMessage) {
    return libraryMessage.startsWith("--") ? libraryMessage : "--" + libraryMessage;
  }
}
