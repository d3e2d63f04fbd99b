package io.olmoppl.scoring;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.ToIntFunction;

/**
 * Packs windows into forward batches: sorted by input length, longest first, each batch as many
 * windows as fit the padded-token budget (B x T, T the batch's longest window), at least one.
 * Sorting keeps padding small.
 */
public final class Packing {
  private Packing() {}

  /**
   * @param items windows with where their results go; sorted in place
   * @param inputLength a window's input length
   * @param budget padded tokens per batch
   * @return the batches, in order
   */
  public static <T> List<List<T>> batches(
      List<T> items, ToIntFunction<T> inputLength, long budget) {
    items.sort(Comparator.comparingInt(inputLength).reversed());
    List<List<T>> out = new ArrayList<>();
    for (int i = 0; i < items.size(); ) {
      int t = inputLength.applyAsInt(items.get(i));
      int end = i + 1;
      while (end < items.size() && (long) (end - i + 1) * t <= budget) {
        end++;
      }
      out.add(items.subList(i, end));
      i = end;
    }
    return out;
  }
}
