package io.olmoppl.model;

import java.util.Arrays;
import java.util.List;

/**
 * One forward pass: {@code rows} of windows laid end to end, each row right-padded to {@code
 * length}. Planned by {@link Passes#plan}.
 *
 * @param windows the pass's windows, row by row
 * @param index for each of {@code windows}, its position in the list given to {@link Passes#plan}
 * @param rowStarts where each row begins in {@code windows} (and {@code windows.size()} last)
 */
public record Pass(List<Window> windows, int[] index, int[] rowStarts, int length) {
  /**
   * The pass as the model's input, row-major over (B, T), B = rows, T = length.
   *
   * @param ids (B*T) token ids, 0 at padding
   * @param positions (B*T) each token's position within its own window
   * @param segmentStart per row and position, where that position's window begins (a padding
   *     position is a segment of its own, never seen by a real position)
   * @param scoredRows (N) the flat (B*T) index of each scored position, window by window
   * @param targets (N) the token each scored position predicts
   * @param longest the longest window's input length
   */
  record Inputs(
      long[] ids,
      long[] positions,
      int[][] segmentStart,
      long[] scoredRows,
      long[] targets,
      int longest) {}

  /**
   * @return rows x length
   */
  public long paddedPositions() {
    return (long) (rowStarts.length - 1) * length;
  }

  /**
   * @return input positions without padding
   */
  public long positions() {
    return windows.stream().mapToLong(Window::inputLength).sum();
  }

  int rows() {
    return rowStarts.length - 1;
  }

  /**
   * @return the pass laid out as the model's input
   */
  Inputs inputs() {
    int b = rows();
    int t = length;
    long[] ids = new long[b * t];
    long[] positions = new long[b * t];
    int[][] segmentStart = new int[b][t];
    int n = windows.stream().mapToInt(Window::scored).sum();
    long[] scoredRows = new long[n];
    long[] targets = new long[n];
    int k = 0;
    for (int r = 0; r < b; r++) {
      int offset = 0;
      for (int wi = rowStarts[r]; wi < rowStarts[r + 1]; wi++) {
        Window w = windows.get(wi);
        System.arraycopy(w.tokens(), 0, ids, r * t + offset, w.inputLength());
        for (int j = 0; j < w.inputLength(); j++) {
          positions[r * t + offset + j] = j;
          segmentStart[r][offset + j] = offset;
        }
        for (int j = w.firstScored(); j < w.inputLength(); j++) {
          scoredRows[k] = (long) r * t + offset + j;
          targets[k++] = w.tokens()[j + 1];
        }
        offset += w.inputLength();
      }
      for (int j = offset; j < t; j++) {
        segmentStart[r][j] = j; // padding: a segment of its own, never seen by a real position
      }
    }
    int longest = windows.stream().mapToInt(Window::inputLength).max().orElse(1);
    return new Inputs(ids, positions, segmentStart, scoredRows, targets, longest);
  }

  /**
   * @param scored one value per scored position, in the order of {@link Inputs#scoredRows}
   * @return per window of the pass, in the pass's order, its values
   */
  float[][] perWindow(float[] scored) {
    float[][] out = new float[windows.size()][];
    int k = 0;
    for (int i = 0; i < out.length; i++) {
      out[i] = Arrays.copyOfRange(scored, k, k + windows.get(i).scored());
      k += out[i].length;
    }
    return out;
  }
}
