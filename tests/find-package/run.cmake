# Installs the Annals build into a scratch prefix, then configures, builds and
# runs a separate consumer project against it with find_package(annals).
# Invoked by ctest with -DANNALS_BINARY_DIR -DCONSUMER_SOURCE_DIR -DWORK_DIR
# -DCMAKE_CXX_COMPILER -DCMAKE_BUILD_TYPE -DCONSUMER_CXX_FLAGS -DCONSUMER_LINKER_FLAGS.
foreach(var ANNALS_BINARY_DIR CONSUMER_SOURCE_DIR WORK_DIR)
  if(NOT ${var})
    message(FATAL_ERROR "run.cmake: ${var} is not set")
  endif()
endforeach()

set(prefix ${WORK_DIR}/prefix)
set(build ${WORK_DIR}/consumer-build)
file(REMOVE_RECURSE ${WORK_DIR})

function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

step(${CMAKE_COMMAND} --install ${ANNALS_BINARY_DIR} --prefix ${prefix})
step(${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${build} -G Ninja
     -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}
     -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE}
     "-DCMAKE_CXX_FLAGS=${CONSUMER_CXX_FLAGS}"
     "-DCMAKE_EXE_LINKER_FLAGS=${CONSUMER_LINKER_FLAGS}")
step(${CMAKE_COMMAND} --build ${build})
step(${build}/consumer ${WORK_DIR}/consumer.db)
message("${step_output}")
