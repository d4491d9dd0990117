// Show slider values as they move; on a photo's row page, show the photo and its most similar photos.
document.addEventListener("DOMContentLoaded", () => {
  for (const input of document.querySelectorAll(".imagecluster-form input[data-show]")) {
    const output = document.getElementById(input.dataset.show);
    input.addEventListener("input", () => { output.value = input.value; });
  }
  const similar = document.querySelector("[data-imagecluster-similar]");
  if (similar) {
    fetch(similar.dataset.imageclusterSimilar)
      .then((r) => (r.ok ? r.json() : { similar: [] }))
      .then((data) => {
        if (data.thumbnail) {
          const photo = document.createElement("img");
          photo.src = data.thumbnail;
          photo.alt = `photo ${data.image_id}`;
          photo.className = "imagecluster-photo";
          similar.append(photo);
        }
        if (!data.similar.length) { return; }
        const heading = document.createElement("h2");
        heading.textContent = "Most similar photos";
        similar.append(heading);
        const row = document.createElement("div");
        row.className = "imagecluster-thumbs";
        for (const item of data.similar) {
          const link = document.createElement("a");
          link.href = item.url;
          link.title = `distance ${item.distance.toFixed(3)}`;
          const img = document.createElement("img");
          img.src = item.thumbnail;
          img.loading = "lazy";
          img.alt = `photo ${item.id}`;
          link.append(img);
          row.append(link);
        }
        similar.append(row);
      });
  }
});
