{
  "targets": [
    {
      "target_name": "healing_native",
      "sources": ["src/addon.cc", "src/kernels.cc"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "conditions": [
        ["OS=='linux'", {
          "cflags_cc": ["-O3", "-march=native", "-std=c++17", "-fno-math-errno", "-fopenmp"],
          "ldflags": ["-fopenmp"],
          "libraries": ["-lopenblas"],
          "defines": ["HEALING_OPENBLAS"]
        }],
        ["OS=='mac'", {
          "libraries": ["-framework Accelerate"],
          "defines": ["HEALING_ACCELERATE", "ACCELERATE_NEW_LAPACK"],
          "xcode_settings": {
            "OTHER_CPLUSPLUSFLAGS": ["-O3", "-std=c++17", "-fno-math-errno"],
            "GCC_ENABLE_CPP_EXCEPTIONS": "YES"
          }
        }]
      ]
    }
  ]
}
