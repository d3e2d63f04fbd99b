package io.olmoppl.runtime;

import ai.djl.Device;
import java.util.Arrays;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Maps the device setting ({@code auto|cpu|gpu}) and the GPU addresses Spark assigned to a task to
 * an engine device. Spark's addresses are physical GPU ids; when {@code CUDA_VISIBLE_DEVICES}
 * already narrows what the process sees, address {@code a} is CUDA device {@code indexOf(a)} in
 * that list. Free of Spark classes so that tools without Spark (the GPU check) use the same rule.
 */
public final class DeviceMapping {
  private static final Logger LOG = LoggerFactory.getLogger(DeviceMapping.class);

  private DeviceMapping() {}

  /**
   * The pure selection rule (tested with synthetic inputs).
   *
   * @param mode auto, cpu or gpu
   * @param addresses GPU addresses Spark assigned to the task (empty when none)
   * @param requested whether the job requests GPUs per task ({@code
   *     spark.task.resource.gpu.amount})
   * @param cudaVisibleDevices the process's {@code CUDA_VISIBLE_DEVICES}, or null
   * @param engineGpus CUDA devices the engine sees
   */
  public static Device choose(
      String mode,
      List<String> addresses,
      boolean requested,
      String cudaVisibleDevices,
      int engineGpus) {
    if (mode.equals("cpu")) {
      return Device.cpu();
    }
    boolean gpuOnly = mode.equals("gpu");
    if (engineGpus == 0) {
      if (gpuOnly) {
        throw new IllegalStateException(
            "device gpu was requested but the PyTorch engine sees no CUDA device."
                + " Build with -Pcuda (pytorch-native-cu124) or point PYTORCH_LIBRARY_PATH at a CUDA libtorch, and run"
                + " on GPU executors; or use device cpu.");
      }
      if (!addresses.isEmpty()) {
        LOG.warn(
            "olmo-ppl: Spark assigned GPU {} but the engine has no CUDA; scoring on CPU",
            addresses);
      }
      return Device.cpu();
    }
    if (addresses.isEmpty()) {
      if (requested) {
        throw new IllegalStateException(
            "the job requests GPUs per task (spark.task.resource.gpu.amount) but"
                + " Spark assigned none to this task. Check spark.executor.resource.gpu.amount and the GPU discovery"
                + " script of the workers.");
      }
      LOG.info("olmo-ppl: no GPU assigned by Spark; using CUDA device 0 of {}", engineGpus);
      return Device.gpu(0);
    }
    String address = addresses.get(0).trim();
    int index;
    if (cudaVisibleDevices != null && !cudaVisibleDevices.isBlank()) {
      List<String> visible =
          Arrays.stream(cudaVisibleDevices.split(",")).map(String::trim).toList();
      index = visible.indexOf(address);
      if (index < 0) {
        throw new IllegalStateException(
            "Spark assigned GPU "
                + address
                + " but CUDA_VISIBLE_DEVICES="
                + cudaVisibleDevices
                + " hides it from this process. Make the workers' GPU discovery script report the"
                + " GPUs of CUDA_VISIBLE_DEVICES, or unset it.");
      }
    } else {
      try {
        index = Integer.parseInt(address);
      } catch (NumberFormatException e) {
        throw new IllegalStateException(
            "Spark assigned GPU address '"
                + address
                + "', which is not a CUDA device"
                + " index. Use a discovery script that reports numeric GPU indices.");
      }
    }
    if (index >= engineGpus) {
      throw new IllegalStateException(
          "Spark assigned GPU "
              + address
              + " (CUDA device "
              + index
              + ") but the"
              + " engine sees only "
              + engineGpus
              + " device(s).");
    }
    return Device.gpu(index);
  }
}
