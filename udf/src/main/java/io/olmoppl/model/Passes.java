package io.olmoppl.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.function.ToIntFunction;

/**
 * The one packer, at both levels: documents' windows into batches under a padded-token budget
 * ({@link #batches}), and a batch's windows into the rows of forward passes ({@link #plan}). Both
 * go longest first, which keeps padding small.
 */
public final class Passes {
  private Passes() {}

  /**
   * Packs windows into forward batches: sorted by input length, longest first, each batch as many
   * windows as fit the padded-token budget (B x T, T the batch's longest window), at least one.
   *
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

  /**
   * Lays one batch's windows out in forward passes: packed into rows first-fit by decreasing
   * length, each row up to the budget's {@link MemoryBudget#rowCapacity} input tokens (a longer
   * window is a row alone). On CPU each row is a pass of its own, so every activation stays small
   * enough for the allocator to reuse; on a GPU rows are as long as the longest window and one pass
   * holds them all.
   *
   * @return the passes, each window in exactly one
   */
  public static List<Pass> plan(List<Window> windows, MemoryBudget budget) {
    if (windows.isEmpty()) {
      return List.of();
    }
    int longest = windows.stream().mapToInt(Window::inputLength).max().orElse(1);
    int capacity = budget.rowCapacity(longest);
    Integer[] order = new Integer[windows.size()];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    Arrays.sort(order, (x, y) -> windows.get(y).inputLength() - windows.get(x).inputLength());
    List<List<Integer>> rows = new ArrayList<>();
    List<Integer> free = new ArrayList<>();
    for (int i : order) {
      int len = windows.get(i).inputLength();
      int r = 0;
      while (r < rows.size() && free.get(r) < len) {
        r++;
      }
      if (r == rows.size()) {
        rows.add(new ArrayList<>());
        free.add(Math.max(capacity, len));
      }
      rows.get(r).add(i);
      free.set(r, free.get(r) - len);
    }
    List<Pass> out = new ArrayList<>();
    if (budget.gpu()) {
      out.add(pass(windows, rows));
    } else {
      for (List<Integer> row : rows) {
        out.add(pass(windows, List.of(row)));
      }
    }
    return out;
  }

  private static Pass pass(List<Window> windows, List<List<Integer>> rows) {
    List<Window> ws = new ArrayList<>();
    int[] index = new int[rows.stream().mapToInt(List::size).sum()];
    int[] starts = new int[rows.size() + 1];
    int length = 0;
    for (int r = 0; r < rows.size(); r++) {
      starts[r] = ws.size();
      int len = 0;
      for (int i : rows.get(r)) {
        index[ws.size()] = i;
        ws.add(windows.get(i));
        len += windows.get(i).inputLength();
      }
      length = Math.max(length, len);
    }
    starts[rows.size()] = ws.size();
    return new Pass(ws, index, starts, length);
  }
}
