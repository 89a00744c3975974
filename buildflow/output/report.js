// buildflow's HTML run report: pointing at a target anywhere (DAG node, timeline row, table row) highlights it
// everywhere. The page reads the same without this script.
(function () {
  "use strict";
  var marked = document.querySelectorAll("[data-target]");
  function mark(name, on) {
    for (var i = 0; i < marked.length; i++) {
      if (marked[i].getAttribute("data-target") === name) {
        marked[i].classList.toggle("hl", on);
      }
    }
  }
  for (var i = 0; i < marked.length; i++) {
    marked[i].addEventListener("mouseenter", function (event) {
      mark(event.currentTarget.getAttribute("data-target"), true);
    });
    marked[i].addEventListener("mouseleave", function (event) {
      mark(event.currentTarget.getAttribute("data-target"), false);
    });
  }
  document.documentElement.setAttribute("data-script", "ran");
})();
