package io.olmoppl.job.report;

import static com.fasterxml.jackson.annotation.JsonInclude.Include.NON_NULL;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonUnwrapped;
import java.util.List;
import java.util.Map;

/**
 * The summary of a {@code score} run, written as {@code _summary.json} ({@link SummaryJson}: the
 * components' names in snake case, one flat object) and read by the report, the console summary and
 * {@code bench}. README ("The summary") documents the fields.
 *
 * @param corpus the corpus figures, the model, the options and the executors
 * @param previous what {@code --previous} carried over, or null without it
 * @param analysis the distribution of document perplexity, buckets, filter and groups
 * @param timings seconds per phase of the run
 * @param throughput rates of the scoring and writing phase
 */
public record ScoreSummary(
    @JsonUnwrapped Corpus corpus,
    @JsonInclude(NON_NULL) Previous previous,
    @JsonUnwrapped Findings analysis,
    Timings timings,
    Throughput throughput) {

  /**
   * Corpus micro-averages over documents with status ok ({@code exp(Σnll / Σtokens)}, {@code Σnll /
   * (Σbytes ln 2)}, word perplexity with lm-eval's word count), the model and the options used.
   *
   * @param status documents per status
   * @param perplexity null without ok tokens (as bitsPerByte, wordPerplexity)
   * @param options the scoring options as the library describes them, plus the run's formats
   */
  public record Corpus(
      long documents,
      Map<String, Long> status,
      long tokens,
      long windows,
      double nll,
      long bytes,
      long words,
      Double perplexity,
      Double bitsPerByte,
      Double wordPerplexity,
      double seconds,
      Double tokensPerSecond,
      ModelInfo model,
      Map<String, Object> options,
      String input,
      String output,
      String distribution,
      long modelLoads,
      long uniqueWeightBytes,
      long broadcastBytes,
      List<ExecutorLoads> executors) {}

  /**
   * The model description shared with {@code inspect}.
   *
   * @param tiedGroups the one tied group (empty when untied)
   * @param ignoredTensor a stored output matrix the tying rule ignores; left out when none
   * @param experts a mixture of experts' facts; left out for a dense model
   */
  public record ModelInfo(
      String fingerprint,
      String path,
      String layout,
      boolean tied,
      List<TiedGroup> tiedGroups,
      String outputTensor,
      @JsonInclude(NON_NULL) String ignoredTensor,
      long parameters,
      @JsonInclude(NON_NULL) ExpertsInfo experts) {}

  /**
   * A mixture of experts: experts per layer, experts per token, whether their weights are divided
   * by their sum, and the parameters one token uses (of {@link ModelInfo#parameters()}).
   */
  public record ExpertsInfo(int count, int topK, boolean normTopkProb, long activeParameters) {
    @Override
    public String toString() {
      return count
          + " per layer, top "
          + topK
          + (normTopkProb ? " (weights renormalised)" : " (weights as routed)")
          + ", "
          + String.format(java.util.Locale.ROOT, "%,d", activeParameters)
          + " active parameters per token";
    }
  }

  /**
   * @param roles the roles the one matrix serves
   * @param tensors every name the file stores it under
   */
  public record TiedGroup(List<String> roles, List<String> tensors) {}

  /** Model loads of one executor JVM ({@code executor_id/pid}). */
  public record ExecutorLoads(
      String executorId,
      String host,
      long pid,
      long loads,
      double loadSeconds,
      long bytesReceived) {}

  /** Rows {@code --previous} carried over and rows scored in this run. */
  public record Previous(long carried, long scored) {}

  /**
   * What the analysis adds: ok documents, byte perplexity, percentiles and histogram of document
   * perplexity, and the buckets, filter, groups and example documents when asked for (left out
   * otherwise).
   */
  public record Findings(
      long documentsOk,
      Double bytePerplexity,
      Map<String, Double> percentiles,
      double percentilesRelativeError,
      Histogram histogram,
      @JsonInclude(NON_NULL) BucketSummary buckets,
      @JsonInclude(NON_NULL) Filter filter,
      @JsonInclude(NON_NULL) Groups groups,
      @JsonInclude(NON_NULL) Examples examples) {}

  /**
   * Documents to read ({@code --examples N}, ok documents only, picked by Spark): the {@code N}
   * lowest and highest perplexity documents, {@code N} per bucket (or of the whole run without
   * buckets; a fixed pseudo-random choice by a hash of the text), and the {@code N} nearest each
   * cut-off on either side.
   *
   * @param perList N
   * @param excerptChars the text of each example is cut to this many characters
   * @param samples per bucket in bucket order; one entry with a null bucket without buckets
   */
  public record Examples(
      int perList,
      int excerptChars,
      List<Example> lowest,
      List<Example> highest,
      List<Sample> samples,
      List<CutoffExamples> cutoffs) {}

  /** Example documents of one bucket ({@code bucket} null: of the whole run), by perplexity. */
  public record Sample(String bucket, List<Example> documents) {}

  /**
   * The documents nearest one cut-off: the highest at or below it (in {@code bucket}) and the
   * lowest above it (in {@code nextBucket}), each by increasing perplexity.
   */
  public record CutoffExamples(
      String bucket,
      String nextBucket,
      double maxPerplexity,
      List<Example> below,
      List<Example> above) {}

  /**
   * One example document.
   *
   * @param id the {@code --id-column} value (null without one)
   * @param group the {@code --group-by} value (null without)
   * @param bucket its {@code ppl_bucket} (null without buckets)
   * @param text its first {@link Examples#excerptChars} characters
   * @param truncated whether the text is longer than that
   */
  public record Example(
      @JsonInclude(NON_NULL) String id,
      @JsonInclude(NON_NULL) String group,
      double perplexity,
      long tokens,
      @JsonInclude(NON_NULL) String bucket,
      String text,
      boolean truncated) {}

  /**
   * Histogram of {@code of} in {@code counts.length} equal bins from {@code min} ({@code min} and
   * {@code binWidth} null without ok documents).
   */
  public record Histogram(String of, Double min, Double binWidth, long[] counts) {}

  /**
   * @param source "computed" or the file the cut-offs were read from
   * @param relativeError the percentiles' relative rank error when computed, else null
   * @param stamp the {@code ppl_model} stamp of the scores the cut-offs were computed from ({@code
   *     --cutoffs} checks it against its run's); null when the file read had none
   * @param fromOtherModel true when applied with {@code --cutoffs-from-other-model} to a run with
   *     another stamp; left out otherwise
   * @param documents documents per bucket, in bucket order, plus {@code none} for rows without one
   */
  public record BucketSummary(
      String source,
      Double relativeError,
      String stamp,
      @JsonInclude(NON_NULL) Boolean fromOtherModel,
      List<Cutoff> cutoffs,
      Map<String, Long> documents) {}

  /**
   * One bucket: up to {@code percentile}, perplexity at most {@code maxPerplexity} (null: no cap).
   */
  public record Cutoff(String bucket, Double percentile, Double maxPerplexity) {}

  /** The filter's rule and the kept and rejected counts (kept + rejected = documents). */
  public record Filter(
      List<String> keepBuckets,
      Double maxPerplexity,
      long kept,
      long rejected,
      String rejectedPath,
      String note) {}

  /**
   * @param total distinct groups; {@code rows} lists at most {@link Analysis#MAX_GROUPS}
   */
  public record Groups(String column, long total, List<Group> rows) {}

  /** One group's documents, ok documents and micro-averages over its ok documents. */
  public record Group(
      String group,
      long documents,
      long ok,
      long tokens,
      double nll,
      long bytes,
      Double perplexity,
      Double bitsPerByte) {}

  /** Seconds per phase. */
  public record Timings(
      double setupSeconds,
      double inputCountSeconds,
      double scoreAndWriteSeconds,
      double summarySeconds,
      double totalSeconds) {}

  /**
   * Documents, tokens of ok documents and bytes per second of scoring and writing (null: no time).
   */
  public record Throughput(
      Double documentsPerSecond, Double tokensPerSecond, Double bytesPerSecond) {}
}
