package io.olmoppl.job.report;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * One number format per quantity, for the report and the console summary: counts with thousands
 * separators, perplexity with 5 significant digits, bits per byte with 4 decimals, seconds with 1,
 * rates as whole numbers. {@code n/a} stands for a missing value.
 */
public final class Numbers {
  static final String NA = "n/a";

  private Numbers() {}

  /**
   * @return {@code 1,234,567}
   */
  public static String count(Number v) {
    return v == null ? NA : String.format(Locale.ROOT, "%,d", v.longValue());
  }

  /**
   * @return at most 5 significant digits, no trailing zeros after the point, thousands separators:
   *     {@code 1.0412}, {@code 163.24}, {@code 12.5}, {@code 1,253.4}, {@code 567,300}; scientific
   *     from 10^15 ({@code 1.2346e+17})
   */
  public static String perplexity(Double v) {
    if (v == null) {
      return NA;
    }
    if (!Double.isFinite(v)) {
      return String.valueOf(v);
    }
    if (v == 0 || Math.abs(v) >= 1e15) {
      return String.format(Locale.ROOT, "%.4e", v);
    }
    BigDecimal r =
        new BigDecimal(v).round(new MathContext(5, RoundingMode.HALF_EVEN)).stripTrailingZeros();
    int decimals = Math.max(0, r.scale());
    return String.format(Locale.ROOT, "%,." + decimals + "f", r);
  }

  /**
   * @return 4 decimals: {@code 1.8720}
   */
  public static String bitsPerByte(Double v) {
    return v == null ? NA : String.format(Locale.ROOT, "%.4f", v);
  }

  /**
   * @return 1 decimal: {@code 12.3}
   */
  public static String seconds(Double v) {
    return v == null ? NA : String.format(Locale.ROOT, "%,.1f", v);
  }

  /**
   * @return a rate per second, whole with separators: {@code 1,235}
   */
  public static String rate(Double v) {
    return v == null ? NA : String.format(Locale.ROOT, "%,.0f", v);
  }

  /**
   * @return {@code ok 380, empty 1, null_text 1}
   */
  public static String statuses(Map<String, Long> status) {
    if (status == null || status.isEmpty()) {
      return "none";
    }
    return status.entrySet().stream()
        .map(e -> e.getKey() + " " + count(e.getValue()))
        .collect(Collectors.joining(", "));
  }

  /**
   * @return {@code input_embedding + output_projection: a, b}, one line per group, or {@code none
   *     (untied)}
   */
  public static String tiedGroups(List<ScoreSummary.TiedGroup> groups) {
    if (groups == null || groups.isEmpty()) {
      return "none (untied)";
    }
    return groups.stream()
        .map(g -> String.join(" + ", g.roles()) + ": " + String.join(", ", g.tensors()))
        .collect(Collectors.joining("\n"));
  }
}
