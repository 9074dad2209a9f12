# Fails naming every public module header that <annals/annals.hpp> does not
# include, so a header added later cannot be forgotten there.
# Invoked by ctest with -DSOURCE_DIR=<the project's source directory>.
file(READ ${SOURCE_DIR}/include/annals/annals.hpp umbrella)
set(missing)
foreach(module core store aggregates projections)
  file(GLOB headers RELATIVE ${SOURCE_DIR}/${module}/include
       ${SOURCE_DIR}/${module}/include/annals/${module}/*.hpp)
  foreach(header IN LISTS headers)
    string(FIND "${umbrella}" "#include \"${header}\"" at)
    if(at EQUAL -1)
      list(APPEND missing ${header})
    endif()
  endforeach()
endforeach()
if(missing)
  message(FATAL_ERROR "annals/annals.hpp does not include: ${missing}")
endif()
message("umbrella: ok")
