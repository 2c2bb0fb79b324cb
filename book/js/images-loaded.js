// Records how many of the page's images really loaded, for book/check-browser.sh.
//
// After the window's load event every <img> has either loaded or failed. An image counts as loaded when
// it is complete and has a natural width: a broken src is also "complete", but with a width of 0.
// The result is written as data-images-loaded="N/M" on <body>, where a headless browser's --dump-dom
// can show it.
window.addEventListener("load", function () {
    "use strict";
    var images = Array.prototype.slice.call(document.images);
    var loaded = images.filter(function (image) {
        return image.complete && image.naturalWidth > 0;
    });
    document.body.dataset.imagesLoaded = loaded.length + "/" + images.length;
});
