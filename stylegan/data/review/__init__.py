"""The review page: the paper's human review of the kept faces, in a browser.

FFHQ's automatic filters were followed by people removing "the occasional statues,
paintings, or photos of photos" (paper, Appendix A). `stylegan review` serves the
current filter output on 127.0.0.1 as pages of thumbnails; each mark a person makes
is written at once into the exclusion list that `filter.exclude` reads.

    exclusions  the exclusion list file: read the marks, write one atomically
    faces       the filter's kept and rejected records, each face's thumbnail and scores
    server      the HTTP server (standard library) and the HTML it renders
    page.js     the page's clicks and keys (served as is; no build step)
"""
