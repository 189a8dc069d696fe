# Detects the optional CUDA and NCCL paths.
#
# LTX_WITH_CUDA / LTX_WITH_NCCL: AUTO builds what the machine has, ON fails when
# it is missing, OFF never builds it. Only the toolkit and headers are needed:
# the code compiles and links on a machine without a GPU and runs where one is.
# Outputs: LTX_CUDA_ENABLED, LTX_NCCL_ENABLED, targets ltx::cuda and ltx::nccl.
# With the toolkit, CUDA is also enabled as a language (nvcc builds ops/'s
# kernels) for CMAKE_CUDA_ARCHITECTURES, by default 90 (H100/H200); pass e.g.
# -DCMAKE_CUDA_ARCHITECTURES="80;90" for other GPUs.

set(LTX_CUDA_ENABLED OFF)
set(LTX_NCCL_ENABLED OFF)

if(NOT LTX_WITH_CUDA STREQUAL "OFF")
  if(NOT CUDAToolkit_ROOT AND EXISTS /usr/local/cuda)
    set(CUDAToolkit_ROOT /usr/local/cuda)
  endif()
  find_package(CUDAToolkit QUIET)
  if(CUDAToolkit_FOUND)
    set(LTX_CUDA_ENABLED ON)
    add_library(ltx_cuda INTERFACE)
    target_link_libraries(ltx_cuda INTERFACE CUDA::cudart)
    target_compile_definitions(ltx_cuda INTERFACE LTX_WITH_CUDA=1)
    add_library(ltx::cuda ALIAS ltx_cuda)
    if(NOT CMAKE_CUDA_COMPILER)
      find_program(CMAKE_CUDA_COMPILER nvcc HINTS ${CUDAToolkit_BIN_DIR} NO_DEFAULT_PATH)
    endif()
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90)
    endif()
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  elseif(LTX_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "LTX_WITH_CUDA=ON but no CUDA toolkit was found (set CUDAToolkit_ROOT)")
  endif()
endif()

if(LTX_CUDA_ENABLED AND NOT LTX_WITH_NCCL STREQUAL "OFF")
  # NCCL lives beside the toolkit, in a Python wheel (nvidia-nccl-cu*) or in NCCL_ROOT.
  find_path(NCCL_INCLUDE_DIR nccl.h
    HINTS ${NCCL_ROOT} $ENV{NCCL_ROOT} ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_ROOT}
    PATH_SUFFIXES include)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2
    HINTS ${NCCL_ROOT} $ENV{NCCL_ROOT} ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}
    PATH_SUFFIXES lib lib64)
  if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    set(LTX_NCCL_ENABLED ON)
    add_library(ltx_nccl INTERFACE)
    target_include_directories(ltx_nccl SYSTEM INTERFACE ${NCCL_INCLUDE_DIR})
    target_link_libraries(ltx_nccl INTERFACE ${NCCL_LIBRARY} ltx::cuda)
    target_compile_definitions(ltx_nccl INTERFACE LTX_WITH_NCCL=1)
    add_library(ltx::nccl ALIAS ltx_nccl)
  elseif(LTX_WITH_NCCL STREQUAL "ON")
    message(FATAL_ERROR "LTX_WITH_NCCL=ON but nccl.h / libnccl were not found (set NCCL_ROOT)")
  endif()
elseif(LTX_WITH_NCCL STREQUAL "ON")
  message(FATAL_ERROR "LTX_WITH_NCCL=ON needs the CUDA toolkit (LTX_WITH_CUDA is ${LTX_WITH_CUDA})")
endif()

# A libtorch built with CUDA exposes c10_cuda; then we use torch's CUDA streams.
set(LTX_TORCH_HAS_CUDA OFF)
if(LTX_CUDA_ENABLED AND TARGET c10_cuda)
  set(LTX_TORCH_HAS_CUDA ON)
endif()
