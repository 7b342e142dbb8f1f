# Finds synthsae's dependencies and defines synthsae_link_dependencies(<target>).
# Used both by the project's own CMakeLists.txt and by the installed synthsaeConfig.cmake,
# so that a consumer gets exactly the same dependency set.
include(CMakeFindDependencyMacro)

find_dependency(Kokkos)
# Debian's Kokkos 3.4 (Trilinos) exports Kokkos::kokkos with an include directory that does
# not exist (<prefix>/lib/include), while its KokkosConfig sets Kokkos_INCLUDE_DIRS correctly.
# Drop include directories that do not exist and add Kokkos_INCLUDE_DIRS; a correct Kokkos
# keeps every directory it had.
if(TARGET Kokkos::kokkos AND NOT SYNTHSAE_KOKKOS_INCLUDES_CHECKED)
  set(SYNTHSAE_KOKKOS_INCLUDES_CHECKED ON)
  get_target_property(_synthsae_kokkos_dirs Kokkos::kokkos INTERFACE_INCLUDE_DIRECTORIES)
  if(_synthsae_kokkos_dirs)
    set(_synthsae_fixed_dirs "")
    set(_synthsae_dropped OFF)
    foreach(_dir IN LISTS _synthsae_kokkos_dirs)
      if(_dir MATCHES "\\$<" OR EXISTS "${_dir}")
        list(APPEND _synthsae_fixed_dirs "${_dir}")
      else()
        set(_synthsae_dropped ON)
      endif()
    endforeach()
    if(_synthsae_dropped)
      list(APPEND _synthsae_fixed_dirs ${Kokkos_INCLUDE_DIRS})
      set_target_properties(Kokkos::kokkos PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_synthsae_fixed_dirs}")
    endif()
  endif()
endif()
find_dependency(Eigen3 3.3 NO_MODULE)
find_dependency(nlohmann_json 3)

find_path(SYNTHSAE_HANA_INCLUDE_DIR boost/hana.hpp)
if(NOT SYNTHSAE_HANA_INCLUDE_DIR)
  message(FATAL_ERROR "synthsae needs Boost.Hana (boost/hana.hpp); on Debian: apt-get install libboost-dev")
endif()

# CUDA is on exactly when the Kokkos we found has it.
set(SYNTHSAE_HAS_CUDA OFF)
if(Kokkos_ENABLE_CUDA)
  set(SYNTHSAE_HAS_CUDA ON)
  find_dependency(CUDAToolkit)
endif()

if(NOT DEFINED SYNTHSAE_USE_OPENMP)
  set(SYNTHSAE_USE_OPENMP ON)
endif()
if(SYNTHSAE_USE_OPENMP)
  find_package(OpenMP QUIET COMPONENTS CXX)
endif()

function(synthsae_link_dependencies target)
  target_link_libraries(${target} INTERFACE Kokkos::kokkos Eigen3::Eigen nlohmann_json::nlohmann_json)
  target_include_directories(${target} SYSTEM INTERFACE ${SYNTHSAE_HANA_INCLUDE_DIR})
  if(SYNTHSAE_USE_OPENMP AND OpenMP_CXX_FOUND)
    target_link_libraries(${target} INTERFACE OpenMP::OpenMP_CXX)
    target_compile_definitions(${target} INTERFACE SYNTHSAE_HOST_OPENMP=1)
  endif()
  if(SYNTHSAE_HAS_CUDA)
    target_link_libraries(${target} INTERFACE CUDA::cublas)
    # nvcc compiles Eigen's headers (used only by host GEMM) and warns that their defaulted
    # members ignore __host__ __device__ (#20012); that is Eigen's noise, not ours.
    target_compile_options(${target} INTERFACE "SHELL:-Xcudafe --diag_suppress=20012")
    # Eigen serves host code only (host GEMM, solves); without this it marks its functions
    # __host__ __device__ under nvcc and every host-only call inside them warns (#20014).
    target_compile_definitions(${target} INTERFACE EIGEN_NO_CUDA)
  endif()
endfunction()
