package io.olmoppl.scoring;

import java.util.Locale;

/**
 * Where the engine runs (the {@code --device} option): how a task's device is chosen from it is
 * {@code io.olmoppl.spark.Devices}' job.
 */
public enum DeviceSetting {
  /** The GPU Spark assigned to the task, else the engine's first GPU, else the CPU. */
  AUTO,
  /** Always the CPU. */
  CPU,
  /** A GPU; refused where the engine sees none. */
  GPU;

  public static DeviceSetting parse(String s) {
    try {
      return valueOf(s.trim().toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(
          "--device must be auto, cpu or gpu, not '" + s.toLowerCase(Locale.ROOT) + "'");
    }
  }

  public String id() {
    return name().toLowerCase(Locale.ROOT);
  }
}
