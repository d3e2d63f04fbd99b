package io.olmoppl.spark;

import ai.djl.Device;
import io.olmoppl.runtime.DeviceMapping;
import io.olmoppl.runtime.TorchEngine;
import io.olmoppl.scoring.DeviceSetting;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;

/**
 * Chooses the engine device for a task from the device setting ({@code auto|cpu|gpu}) and the GPU
 * Spark assigned to it ({@code TaskContext.resourcesJMap().get("gpu")}). Spark's addresses are
 * physical GPU ids; when {@code CUDA_VISIBLE_DEVICES} already narrows what the process sees,
 * address {@code a} is CUDA device {@code indexOf(a)} in that list.
 */
public final class Devices {
  private Devices() {}

  /**
   * @return the device for the current task (or the driver, outside tasks)
   */
  public static Device forTask(DeviceSetting mode) {
    if (mode == DeviceSetting.CPU) {
      return Device.cpu();
    }
    TaskContext tc = TaskContext.get();
    List<String> addresses = List.of();
    boolean requested = false;
    if (tc != null) {
      ResourceInformation gpu = tc.resourcesJMap().get("gpu");
      if (gpu != null) {
        addresses = Arrays.asList(gpu.addresses());
      }
      String amount =
          SparkEnv.get() == null
              ? null
              : SparkEnv.get().conf().get("spark.task.resource.gpu.amount", null);
      requested = amount != null;
    }
    return choose(
        mode,
        addresses,
        requested,
        System.getenv("CUDA_VISIBLE_DEVICES"),
        TorchEngine.get().getGpuCount());
  }

  /** See {@link DeviceMapping#choose}. */
  public static Device choose(
      DeviceSetting mode,
      List<String> addresses,
      boolean requested,
      String cudaVisibleDevices,
      int engineGpus) {
    return DeviceMapping.choose(mode.id(), addresses, requested, cudaVisibleDevices, engineGpus);
  }
}
